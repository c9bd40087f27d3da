//! std's `mpsc` channels, with bounded channels taking part in the lock order
//! ([`lockcheck::sync::mpsc`](crate::sync::mpsc) in instrumented builds).
//!
//! A send into a full bounded channel waits for the thread that receives from it, as an
//! acquisition waits for the thread that holds a lock. lockcheck models exactly that: a bounded
//! channel is a lock of kind [`LockKind::Channel`], **held** (shared) by the thread that owns
//! its receiving end, and **requested** (exclusive) by a send that finds it full (or, with no
//! capacity, no receiver waiting), released as soon as the send is done. The owner is the
//! creating thread from the channel's creation, then the last thread that used the
//! [`Receiver`] (any receive, an iterator's step), until the receiver is dropped. So a send made
//! holding a lock `L` into a channel whose receiving thread takes `L` before it receives is a
//! lock-order cycle `L -> channel -> L`, reported the first time both orders are seen (even when
//! the run did not hang), and a real hang is a cycle of the wait-for graph (a `deadlock`).
//!
//! What is not a wait is not recorded: a send that found room, every send of an unbounded
//! channel ([`channel`]: std's own [`Sender`], which never blocks), and a receive. A receive
//! that waits for any sender is not modelled (a blocking `recv` under a lock every sender takes
//! before it sends goes unseen). A receiver moved to another thread (which the type system does
//! not show) stays with the thread that last used it until the new thread uses it: locks taken
//! by the old thread meanwhile are seen as taken while holding the channel. A send by the
//! owning thread itself first waits up to [`GRACE`] without any check (the receiver may have
//! moved), and only then is reported as a self-deadlock.
//!
//! Another thread's use of the receiver takes the hold off the previous owner's held set the way
//! a guard released on another thread does (see `handoff`): it is posted to a mailbox, which the
//! previous owner empties before its next check (`drain`), so no acquisition is checked against
//! a stale hold. The mailbox is empty unless a receiver changed threads; the fast paths never
//! look at it.

use super::class::{ClassSrc, Ids, Meta};
use super::hooks;
use super::recorder;
use super::state::{internal, ThreadState, STATE};
use lockcheck_core::trace::{How, LockKind, Mode};
use std::cell::Cell;
use std::collections::BTreeSet;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use std::sync::mpsc::{
    RecvError, RecvTimeoutError, SendError, Sender, TryRecvError, TrySendError,
};

/// How long a thread that owns a channel's receiving end waits in a send into that full channel
/// before lockcheck takes the send for a self-deadlock: the receiver may have moved to a thread
/// that has not used it yet (lockcheck cannot see the move).
pub const GRACE: Duration = Duration::from_secs(1);

/// A wait of a send is cut in slices of at most this, to retry the send (a receive wakes the
/// waiting senders, but a rendezvous channel accepts only while its receiver is inside `recv`).
const POLL: Duration = Duration::from_millis(2);

/// The lock a bounded channel is, and the wake-ups of its waiting senders.
struct Gate {
    meta: Meta,
    /// lockcheck's number of the thread that holds the channel (owns the receiver); 0: none.
    holder: AtomicU64,
    /// Senders waiting for room.
    waiting: AtomicUsize,
    lock: parking_lot::Mutex<()>,
    room: parking_lot::Condvar,
}

impl Gate {
    fn new(site: &'static Location<'static>) -> Gate {
        Gate {
            meta: Meta::new(ClassSrc::Site(site)),
            holder: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            lock: parking_lot::Mutex::new(()),
            room: parking_lot::Condvar::new(),
        }
    }

    /// The calling thread uses the receiving end: it holds the channel from now on (no edge:
    /// taking the receiver is no wait). A previous owner's hold is posted to it.
    #[inline]
    fn hold(&self, site: &'static Location<'static>) {
        let Ok(me) = STATE.try_with(ThreadState::id) else {
            return;
        };
        if self.holder.load(Ordering::Relaxed) == me {
            return;
        }
        self.take_over(me, site);
    }

    #[cold]
    #[inline(never)]
    fn take_over(&self, me: u64, site: &'static Location<'static>) {
        let old = self.holder.swap(me, Ordering::AcqRel);
        if old == me {
            return;
        }
        if old != 0 {
            if let Some(ids) = self.meta.assigned() {
                post(old, ids);
            }
        }
        register_owner();
        // A hold of this channel posted back to this thread (it owned the receiver before) leaves
        // first: the new hold must not stand next to a stale one.
        let _ = STATE.try_with(drain);
        hooks::lock_nonblocking(
            &self.meta,
            LockKind::Channel,
            Mode::Shared,
            How::Try,
            site,
            || true,
        );
    }

    /// The receiving end is dropped by the calling thread: nobody holds the channel any more.
    fn let_go(&self) {
        let me = STATE.try_with(ThreadState::id).unwrap_or(0);
        let old = self.holder.swap(0, Ordering::AcqRel);
        if old == 0 {
            return;
        }
        if old == me {
            hooks::released(&self.meta, Mode::Shared);
        } else if let Some(ids) = self.meta.assigned() {
            post(old, ids);
        }
    }

    /// Wakes the senders waiting for room (a receive made some, or a rendezvous receiver is
    /// about to wait, or the receiver is gone).
    #[inline]
    fn wake(&self) {
        if self.waiting.load(Ordering::SeqCst) != 0 {
            self.wake_slow();
        }
    }

    #[cold]
    #[inline(never)]
    fn wake_slow(&self) {
        let _g = self.lock.lock();
        self.room.notify_all();
    }

    /// Tries `attempt` until it succeeds or `deadline` passes, sleeping on the gate between
    /// tries (at most [`POLL`] at a time).
    fn wait(&self, attempt: &dyn Fn() -> bool, deadline: Option<Instant>) -> bool {
        loop {
            let mut g = self.lock.lock();
            if attempt() {
                return true;
            }
            let now = Instant::now();
            let until = match deadline {
                Some(d) if d <= now => return false,
                Some(d) => d.min(now + POLL),
                None => now + POLL,
            };
            self.room.wait_until(&mut g, until);
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        super::forget(&self.meta);
    }
}

/// Counts a sender among the gate's waiters while it lives.
struct Waiting<'a>(&'a Gate);

impl<'a> Waiting<'a> {
    fn new(g: &'a Gate) -> Waiting<'a> {
        g.waiting.fetch_add(1, Ordering::SeqCst);
        Waiting(g)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------------
// Holds taken over by another thread (see the module docs).

/// Threads that may hold a channel (registered when they first do, removed at their exit), and
/// the holds other threads took from them: (owner, channel).
struct Mailbox {
    live: BTreeSet<u64>,
    entries: Vec<(u64, Ids)>,
}

static MAILBOX: parking_lot::Mutex<Mailbox> = parking_lot::Mutex::new(Mailbox {
    live: BTreeSet::new(),
    entries: Vec::new(),
});
/// Entries in the mailbox: what [`drain`] looks at first.
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// Unregisters the thread at its exit and drops the holds posted to it.
struct ExitHook(u64);

impl Drop for ExitHook {
    fn drop(&mut self) {
        let mut m = internal(&MAILBOX);
        m.live.remove(&self.0);
        let before = m.entries.len();
        m.entries.retain(|&(owner, _)| owner != self.0);
        PENDING.fetch_sub(before - m.entries.len(), Ordering::Release);
    }
}

thread_local! {
    static EXIT: ExitHook = {
        let me = STATE.try_with(ThreadState::id).unwrap_or(0);
        internal(&MAILBOX).live.insert(me);
        ExitHook(me)
    };
}

/// Registers the calling thread as a possible holder.
fn register_owner() {
    if STATE.try_with(|s| s.busy.get()).unwrap_or(true) {
        return;
    }
    let _ = EXIT.try_with(|_| ());
}

/// Posts the hold of channel `ids` to the thread `owner`, which took it before.
fn post(owner: u64, ids: Ids) {
    let mut m = internal(&MAILBOX);
    // At most one entry per thread and channel: a thread holds a channel once.
    if m.live.contains(&owner) && !m.entries.contains(&(owner, ids)) {
        m.entries.push((owner, ids));
        PENDING.fetch_add(1, Ordering::Release);
    }
}

/// Drops this thread's holds of channels whose receiver another thread has used since (call
/// before checking an acquisition against the held set, or taking a snapshot of it).
#[inline]
pub(crate) fn drain(s: &ThreadState) {
    if PENDING.load(Ordering::Acquire) != 0 {
        drain_slow(s);
    }
}

#[cold]
#[inline(never)]
fn drain_slow(s: &ThreadState) {
    if s.busy.get() {
        return;
    }
    let me = s.id();
    let mine: Vec<Ids> = {
        let mut m = internal(&MAILBOX);
        let before = m.entries.len();
        let mut mine = Vec::new();
        m.entries.retain(|&(owner, ids)| {
            let keep = owner != me;
            if !keep {
                mine.push(ids);
            }
            keep
        });
        PENDING.fetch_sub(before - m.entries.len(), Ordering::Release);
        mine
    };
    for ids in mine {
        let h = s.remove_last(|h| h.inst == ids.inst && h.mode == Mode::Shared);
        if let Some(h) = h {
            if h.recorded || (h.since.is_some() && recorder::recording()) {
                let ns = h.since.map_or(0, |t| t.elapsed().as_nanos() as u64);
                recorder::on_release(ids, ns);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The API.

/// Creates an unbounded channel (std's): its sends never block, so it takes no part in the lock
/// order; the [`Receiver`] is this module's.
#[must_use]
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = std_mpsc::channel();
    (
        tx,
        Receiver {
            inner: rx,
            gate: None,
        },
    )
}

/// Creates a bounded channel of `bound` messages (0: every send waits for a receive), a lock of
/// kind `channel` whose class is the caller's location (`channel created at file:line:col` in
/// reports), held by the calling thread until another thread uses the [`Receiver`].
#[must_use]
#[track_caller]
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    let site = Location::caller();
    let (tx, rx) = std_mpsc::sync_channel(bound);
    let gate = Arc::new(Gate::new(site));
    gate.hold(site);
    (
        SyncSender {
            inner: tx,
            gate: gate.clone(),
        },
        Receiver {
            inner: rx,
            gate: Some(gate),
        },
    )
}

/// The sending half of a bounded channel ([`sync_channel`]): std's `SyncSender`, whose send
/// into a full channel is a request of the channel (see the module docs).
pub struct SyncSender<T> {
    inner: std_mpsc::SyncSender<T>,
    gate: Arc<Gate>,
}

impl<T> SyncSender<T> {
    /// Sends `t`, waiting for room (with no capacity, for a receive); an error (with `t`) if
    /// the receiver is gone.
    #[track_caller]
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        match self.inner.try_send(t) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(t)) => Err(SendError(t)),
            Err(TrySendError::Full(t)) => self.send_waiting(t, Location::caller()),
        }
    }

    /// Sends `t` if there is room now (with no capacity, if a receiver is waiting); never waits.
    pub fn try_send(&self, t: T) -> Result<(), TrySendError<T>> {
        self.inner.try_send(t)
    }

    /// The send found the channel full: a request of the channel, released once sent.
    #[cold]
    #[inline(never)]
    #[track_caller]
    fn send_waiting(&self, t: T, site: &'static Location<'static>) -> Result<(), SendError<T>> {
        let gate = &*self.gate;
        let _waiting = Waiting::new(gate);
        let slot = Cell::new(Some(t));
        // True once the value is gone into the channel, or the channel is disconnected (the
        // value back in the slot).
        let attempt = || -> bool {
            let Some(t) = slot.take() else { return true };
            match self.inner.try_send(t) {
                Ok(()) => true,
                Err(TrySendError::Disconnected(t)) => {
                    slot.set(Some(t));
                    true
                }
                Err(TrySendError::Full(t)) => {
                    slot.set(Some(t));
                    false
                }
            }
        };
        let me = STATE.try_with(ThreadState::id).unwrap_or(0);
        let own = me != 0 && gate.holder.load(Ordering::Relaxed) == me;
        let done = own && gate.wait(&attempt, Instant::now().checked_add(GRACE));
        if !done {
            let r = hooks::lock_blocking(
                &gate.meta,
                LockKind::Channel,
                Mode::Exclusive,
                1,
                site,
                attempt,
                || {
                    gate.wait(&attempt, None);
                },
                |d| gate.wait(&attempt, Instant::now().checked_add(d)),
            );
            if let Err(v) = r {
                drop(_waiting);
                drop(slot);
                v.raise();
            }
            hooks::released(&gate.meta, Mode::Exclusive);
        }
        match slot.take() {
            None => Ok(()),
            Some(t) => Err(SendError(t)),
        }
    }
}

impl<T> Clone for SyncSender<T> {
    fn clone(&self) -> SyncSender<T> {
        SyncSender {
            inner: self.inner.clone(),
            gate: self.gate.clone(),
        }
    }
}

impl<T> fmt::Debug for SyncSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncSender").finish_non_exhaustive()
    }
}

/// The receiving half of a channel: std's `Receiver`. For a bounded channel, the thread that
/// uses it holds the channel (see the module docs).
pub struct Receiver<T> {
    inner: std_mpsc::Receiver<T>,
    /// `None` for an unbounded channel.
    gate: Option<Arc<Gate>>,
}

impl<T> Receiver<T> {
    #[inline]
    fn used(&self, site: &'static Location<'static>) {
        if let Some(g) = &self.gate {
            g.hold(site);
        }
    }

    #[inline]
    fn took<R>(&self, r: R) -> R {
        if let Some(g) = &self.gate {
            g.wake();
        }
        r
    }

    /// Waits for a message; an error once every sender is gone and the channel is empty.
    #[track_caller]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.used(Location::caller());
        // A rendezvous sender may be waiting for this receive to start.
        if let Some(g) = &self.gate {
            g.wake();
        }
        self.took(self.inner.recv())
    }

    /// A message if one is there now.
    #[track_caller]
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.used(Location::caller());
        self.took(self.inner.try_recv())
    }

    /// Waits at most `timeout` for a message.
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.used(Location::caller());
        if let Some(g) = &self.gate {
            g.wake();
        }
        self.took(self.inner.recv_timeout(timeout))
    }

    /// An iterator that waits for each message, until every sender is gone.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the messages there now (it never waits).
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if let Some(g) = &self.gate {
            g.let_go();
        }
        // The std receiver is dropped after this (disconnecting): the waiting senders learn it at
        // their next try, within a `POLL`.
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// An iterator that waits for each message ([`Receiver::iter`]).
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

/// An iterator over the messages there now ([`Receiver::try_iter`]).
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

/// An owning iterator that waits for each message ([`Receiver::into_iter`]).
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("rx", self.rx).finish()
    }
}

impl<T> fmt::Debug for TryIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryIter").field("rx", self.rx).finish()
    }
}

impl<T> fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter").field("rx", &self.rx).finish()
    }
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    #[track_caller]
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    #[track_caller]
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    #[track_caller]
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
