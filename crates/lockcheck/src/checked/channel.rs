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
//! channel ([`channel`]: std's `Sender`, wrapped, which never blocks), and a receive that finds
//! a message (or the channel disconnected). A receive that waits for a message while its thread
//! holds locks is a wait for the channel's senders, any of them (next sections but one: "A
//! receive that waits for a message"). A receiver moved to another thread (which the type system does
//! not show) stays with the thread that last used it until the new thread uses it: locks taken
//! by the old thread meanwhile are seen as taken while holding the channel, except before the
//! receiver's first use (next section). A send by the
//! owning thread itself first waits up to [`GRACE`] without any check (the receiver may have
//! moved), and only then is reported as a self-deadlock.
//!
//! # Happens-before through the message
//!
//! A send that waited under `L` for message `k` (its own, the `k`-th into the channel, counted
//! from 0) and a receiving thread that takes `L` while it owns the receiver close the cycle
//! `L -> channel -> L` only if the receiver can take `L` before it has received message `k`:
//! taken after `r` receives, a deadlock needs `r <= k`. After message `k` is received, the send
//! is over, and so is its wait under `L`: the receiver's lock is ordered after it. lockcheck
//! applies this as an order between threads, as a spawn or a join orders them: a send that
//! waits marks its message with its thread's vector clock, ticks that clock once the value is
//! in, and the thread that receives the marked message joins the clock. The receiver's
//! dependencies from then on are ordered after the send's (`a one-shot hand-over under a lock,
//! then the receiver's lock` is silent), and those it made before, its receive count `r <= k`,
//! are not (a receiver that takes `L` and keeps it across its receives, or takes it before
//! receiving the message the send waits on, is still reported: `sled#1515`).
//!
//! Exactly:
//! - only the index of the message carries the order, so it holds only while that index is the
//!   same in every schedule: the mark is made when one thread is the only one that has sent (or
//!   begun a send) into the channel, through the only live [`SyncSender`] (a clone, alive, may
//!   send first in another schedule). A second sending thread makes the channel mixed for good,
//!   before its first message can be in it, and the marks not received yet join nothing. Several
//!   senders are therefore reported as before, the hand-over included (a send of the other
//!   thread may take message `k`'s place, and the receiver's lock come before the waiting
//!   one's message). Not applied soundly: a `SyncSender` shared by reference
//!   (`Arc<SyncSender>`) with a thread whose first send comes after the receive that joined (the
//!   one handle looks like one sender until then). lockcheck sees it at that send (a handle
//!   used by a second thread) and says so once per process, an `incomplete` finding (limit
//!   `channel-message-order`: an inversion through the earlier send may be unreported); a
//!   handle *moved* to another thread after such a join is reported the same way (it cannot be
//!   told apart);
//! - every receive that gets a message counts, whatever its kind (`recv`, `try_recv`,
//!   `recv_timeout`, the iterators' steps); one that gets none (empty, timed out, disconnected)
//!   does not;
//! - with a capacity `c > 0`, the send of message `k` waits for the receive of message `k - c`,
//!   but the order comes with message `k` itself: a receiver that takes `L` between the two
//!   receives is still reported (a false alarm left, on the safe side);
//! - a send that never puts its value in (the receiver gone, or a report that stops it) marks
//!   nothing; a mark waits for its message at most while that message is in the channel, so
//!   there are at most capacity + 1 marks;
//! - the receiver joins once the send is over (its bookkeeping done, waited for at most
//!   `MARK_WAIT`, one second; else nothing is joined);
//! - the trace shows the order with the events of a spawn and a join (no new event): the
//!   message is a thread number of its own, which does nothing else; the sender writes its
//!   `fork` once the send is over (its clock then covers the wait's `request`, and ticks), and
//!   the receiver its `join` before anything it does after the receive. `lockcheck analyze`
//!   then orders them as the runtime did (docs/trace-format.md, "Channels").
//!
//! # A receiver moved before its first use
//!
//! A receiver is usually made to be moved: created by one thread, given to a consumer thread.
//! Until some thread uses it, lockcheck cannot tell whether the creator still has it, so it
//! treats it as an owned guard (README, "Owned guards"): the creator's dependencies from the
//! channel while it is *fresh* (nobody has used the receiver) are kept aside, not in the graph.
//! If the creator itself then uses the receiver (a receive, or dropping it), it held the channel
//! all along: they join the graph, and a cycle they close is reported then, without panicking
//! (the acquisitions are over). If another thread uses it first, the receiver may have left
//! the creator before them: they are forgotten. Two exceptions, on the reporting side: a
//! dependency made while a sender waits on the channel goes to the graph at once (the
//! acquisition may close a deadlock now: sled#1515, where the creator, its receiver never used,
//! locks what the waiting publisher holds), and past [`DEFERRED_LIMIT`] kept dependencies per
//! channel (reported once, as an `incomplete` finding) the next go to the graph at once too.
//! In the wait-for graph a send waits for the channel's holder *now* (not for the holds in a
//! waiter's snapshot: the receiver may have changed threads since that waiter began), and a
//! fresh channel's creator counts as that holder only once the send has waited [`GRACE`]
//! (checked again then): before, a creator that waits for the sender's lock after giving its
//! unused receiver away was a `deadlock`, and under `warn` the creator gave up its locks
//! (`tests/channel_recv.rs`); a creator that still has the receiver is one a second late (a
//! real hang is a real hang). A holder that is itself waiting to receive from this very channel
//! keeps no send waiting (the two meet at the send's next try: a rendezvous send that missed its
//! receiver between two of its waits was a false `deadlock` once that receive had waited past
//! its grace). The trace does not show the deferral yet: `lockcheck analyze` sees the creator's
//! dependencies as taken holding the channel (offline reports a superset: the moved-receiver
//! look-alike is reported offline).
//!
//! # A receive that waits for a message
//!
//! `recv`, an iterator's step and `recv_timeout` (while it waits) that find the channel empty,
//! made by a thread that holds locks, wait for any sender of the channel (bounded or not) to
//! send: an OR-wait. lockcheck models it as a request (mode `w`, kind `channel`) of a second
//! lock of the channel, its *senders* (class `senders of channel created at file:line:col`),
//! made at the receive's site and given back as soon as the receive returns. The receive is a
//! waiter of the wait-for graph (`watch.rs`) that is stuck only when **every** live sender
//! handle is with a thread that is itself stuck (waiting, directly or through other waits, on
//! something the receiving thread holds); then the hang is reported as a `deadlock` (lock names,
//! sites, the backtrace of the thread that found it; the configured action), and the receiving
//! thread gives up its locks (it panics, under `panic` and `warn` alike, as any wait-for cycle's
//! victim: a sender blocked on the receiver's lock usually holds nothing that would free it).
//! Which thread a handle is with:
//! - a handle is **placed** with the thread that last sent through it (each [`Sender`] and
//!   [`SyncSender`] handle, clones included, is tracked; a send by another thread than the
//!   last one moves it, one compare per send otherwise); one placed with the receiving thread
//!   itself cannot send while that thread waits here: it counts as stuck (a `tx` the receiving
//!   thread kept, say to clone it for workers, is the usual one), but alone, with no other
//!   handle, it makes no deadlock of locks (a thread that waits for itself hangs, as with std,
//!   unreported);
//! - a handle never used is **unplaced**: it may
//!   have moved anywhere (a handle moves with no trace: `let (tx, rx) = channel(); spawn(move
//!   || tx.send(..))` sends for the first time from the thread that blocks). Unplaced handles
//!   count as stuck only when some stuck thread that no placed handle is with waits for a lock
//!   the receiving thread holds: they are assumed to be with it (the report says so: `a sender
//!   handle made there, never used yet: assumed here`);
//! - and a receive counts as stuck only once it has waited [`RECV_GRACE`] (one second; it is
//!   checked again then): a placed handle may have moved since its last send. When an unplaced
//!   handle is assumed, only once it has waited [`UNPLACED_GRACE`] (five seconds; checked again
//!   then too): that handle may be about to send, and the assumption is a guess. The report of
//!   a real hang comes a second late, or five seconds with a handle never used.
//!
//! What it cannot tell apart, both on the reporting side: an unplaced handle with a thread that
//! is busy (not blocked) for longer than [`UNPLACED_GRACE`] while another thread, that has no
//! placed handle, waits for the receiving thread's lock; and a placed handle moved, since its last
//! send, from a thread now stuck on the receiver's lock to a thread that is busy past the grace.
//! Both are reported as deadlocks (false alarms); neither is one if the busy thread sends within
//! the grace. A receive that finds the channel empty while its thread holds nothing is std's
//! own wait (it cannot be the cycle's: nobody can wait for a lock it holds). A `recv_timeout`
//! shorter than the grace never counts as stuck (repeated in a loop, it is a miss).
//!
//! The trace: the receive's request of the senders is an ordinary `request` (with the locks
//! held, as every request); a sender that the runtime found stuck in such a deadlock writes, once
//! its own wait ends (the receive gave up its locks), a `try` `acquire` of the channel's senders
//! (mode `r`, at the handle's site), a `request` of what it waited for and the senders'
//! `release`: what the runtime saw, so that `lockcheck analyze` finds the cycle `L -> senders ->
//! L` (docs/trace-format.md, "Channels"). No new event.
//!
//! # Predicting a receive's deadlock (opt-in)
//!
//! By default only the hang is reported, not the order seen in a run that did not hang: exactly,
//! the runtime would need at each send the locks the sender took since its previous send (or
//! since it got the handle), a log of every acquisition, on the fast path. With
//! `LOCKCHECK_CHANNEL_RECV=on` (or `lockcheck::watchdog::set_channel_recv_check(true)`) a
//! thread that sends through a handle **holds** the channel's senders (mode `r`, a `try`
//! acquisition at the send's site, so no edge into them) from that send on, until it drops a
//! handle it last used, another thread sends through that handle (its hold is posted to it as a
//! moved receiver's is), or it waits in a receive of that channel itself. Every lock `L` it takes
//! meanwhile is a dependency `senders -> L`, and a receive that waited holding `L` one
//! `L -> senders`: the cycle is a lock-order inversion, reported the first time both orders are
//! seen (even when the run did not hang), with the happens-before of spawns, joins and the
//! message marks of bounded channels, on both sides (the trace shows the holds with the ordinary
//! events). Its cost: a sending thread's acquisitions are nested ones (the dependency cache).
//!
//! Why opt-in: an OR-wait is no lock, and the lock order reports these correct programs
//! (`tests/channel_recv_predict.rs` pins the first as a known false alarm):
//! - several senders, one of which never takes `L` and keeps sending: the receive is not stuck,
//!   yet `L -> senders -> L` is a cycle;
//! - a lock taken after the sender's last send while it still has the handle (it counts until
//!   the handle is dropped: a receive that waits for the channel's end does wait for it);
//! - a receiver that takes `L` only after receiving a message sent after the sender's `L`, on
//!   an unbounded channel or a bounded one whose send did not wait (no message carries an order
//!   then).
//!
//! And it misses a sender's locks before its first send (the handle's first use), which is where
//! the classic hang is (`spawn(move || { let v = *state.lock(); tx.send(v) })`): the hang itself
//! is reported, the order in a run that did not hang is not.
//!
//! Another thread's use of the receiver takes the hold off the previous owner's held set the way
//! a guard released on another thread does: it is posted to `handoff`'s mailbox (an entry of
//! kind `Release::Channel`), which the previous owner empties before its next check
//! (`handoff::drain_held`), so no acquisition is checked against a stale hold. The mailbox is
//! empty unless a receiver changed threads (or, with `send_guard`, a guard); the fast paths
//! never look at it without `send_guard`.

use super::class::{ClassSrc, Ids, Meta};
use super::graph;
use super::handoff::{self, Release};
use super::hooks;
use super::recorder;
use super::report::{EdgeInfo, LockRef, Violation, ViolationKind};
use super::state::{Held, ThreadState, STATE};
use lockcheck_core::deps::VectorClock;
use lockcheck_core::trace::{How, LockKind, Mode};
use std::cell::{Cell, RefCell};
use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

pub use std::sync::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

/// How long a thread that owns a channel's receiving end waits in a send into that full channel
/// before lockcheck takes the send for a self-deadlock: the receiver may have moved to a thread
/// that has not used it yet (lockcheck cannot see the move).
pub const GRACE: Duration = Duration::from_secs(1);

/// A wait of a send is cut in slices of at most this, to retry the send (a receive wakes the
/// waiting senders, but a rendezvous channel accepts only while its receiver is inside `recv`).
const POLL: Duration = Duration::from_millis(2);

/// The lock a bounded channel is, and the wake-ups of its waiting senders.
pub(crate) struct Gate {
    meta: Meta,
    /// lockcheck's number of the thread that holds the channel (owns the receiver); 0: none.
    holder: AtomicU64,
    /// Senders waiting for room.
    waiting: AtomicUsize,
    lock: parking_lot::Mutex<()>,
    room: parking_lot::Condvar,
    /// Messages sent so far (every send that put its value in).
    sent: AtomicU64,
    /// Messages received so far (every receive that got one).
    received: AtomicU64,
    /// The channel's bound (0: a rendezvous channel).
    capacity: usize,
    /// lockcheck's number of the one thread that has sent (or begun a send) so far; 0: none
    /// yet; [`MIXED`] once a second thread has.
    sender: AtomicU64,
    /// Live [`SyncSender`] handles.
    handles: AtomicUsize,
    /// The clocks of the sends that waited, by the index of their message, not received yet
    /// (see [`Gate::mark`]): at most one per message in the channel.
    marks: parking_lot::Mutex<VecDeque<Arc<Mark>>>,
    /// Entries in `marks`: what a receive looks at.
    marked: AtomicUsize,
    /// A receive joined a mark's clock (see [`Gate::moved_after_join`]).
    joined: AtomicBool,
    /// Nobody has used the receiver yet: the creating thread's hold is unconfirmed (see the
    /// module docs, "A receiver moved before its first use").
    fresh: AtomicBool,
    /// The creating thread's dependencies on the channel while it is fresh, not in the graph yet.
    deferred: parking_lot::Mutex<Vec<Deferred>>,
    /// The address of this channel's [`Senders`], which a receive waiting on it waits for: a
    /// send is not kept waiting by a holder that waits to receive from this very channel (see
    /// [`gate_holder`]). The waiting send's handle keeps the `Senders` alive, so the address
    /// names no other channel meanwhile.
    senders: usize,
}

/// A dependency `channel -> lock` (and whatever else was held) of the creating thread while the
/// channel was fresh, kept out of the graph until that thread uses the receiver itself.
struct Deferred {
    thread: u64,
    inst: u64,
    class: u32,
    mode: Mode,
    site: &'static Location<'static>,
    held: Vec<Held>,
    clock: VectorClock,
}

/// The most dependencies a fresh channel keeps waiting (per channel). Past it, a dependency is
/// checked at once, as without the deferral (a false alarm possible, never a miss), and the
/// bound is reported once (`incomplete`, limit `deferred-channel-dependencies`).
pub const DEFERRED_LIMIT: usize = 4096;

/// A waiting send's mark: its message's index and the sender's clock (see [`Gate::mark`]).
struct Mark {
    k: u64,
    clock: VectorClock,
    /// `Some` once the send is over: the message's number in the trace (0: none).
    done: parking_lot::Mutex<Option<u64>>,
    over: parking_lot::Condvar,
}

/// How long a receive of a marked message waits for the sender to finish the send's
/// bookkeeping before it joins nothing (the order is then not applied, on both sides).
const MARK_WAIT: Duration = Duration::from_secs(1);

/// [`Gate::sender`] once two threads have sent into the channel.
const MIXED: u64 = u64::MAX;

impl Gate {
    fn new(site: &'static Location<'static>, senders: &Arc<Senders>, capacity: usize) -> Gate {
        Gate {
            capacity,
            senders: Arc::as_ptr(senders) as usize,
            meta: Meta::new(ClassSrc::Site(site)),
            holder: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            lock: parking_lot::Mutex::new(()),
            room: parking_lot::Condvar::new(),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            sender: AtomicU64::new(0),
            handles: AtomicUsize::new(1),
            marks: parking_lot::Mutex::new(VecDeque::new()),
            joined: AtomicBool::new(false),
            marked: AtomicUsize::new(0),
            fresh: {
                FRESH_LIVE.fetch_add(1, Ordering::Relaxed);
                AtomicBool::new(true)
            },
            deferred: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// Before a send by thread `me` puts its value in: notes its sender (a second thread makes
    /// the channel [`MIXED`] for good, before its first message can be in the channel).
    #[inline]
    fn sending(&self, me: u64) {
        if self.sender.load(Ordering::Relaxed) != me {
            self.sending_slow(me);
        }
    }

    #[cold]
    #[inline(never)]
    fn sending_slow(&self, me: u64) {
        if me == 0 {
            self.sender.store(MIXED, Ordering::SeqCst);
        } else if let Err(other) =
            self.sender
                .compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst)
        {
            if other != me {
                self.sender.store(MIXED, Ordering::SeqCst);
            }
        }
    }

    /// A send that must wait, by thread `me`, the only sender so far through the only handle:
    /// its message will be number `sent` (nobody else can put one in first), and the thread
    /// that receives it then knows everything the sender did before, its wait included (see the
    /// module docs, "Happens-before through the message"). The mark carries the sender's clock;
    /// the sender ticks its own once the send is done ([`Gate::marked_sent`]). `None`: no mark
    /// (several senders may be, or no clock).
    fn mark(&self, me: u64) -> Option<Arc<Mark>> {
        if me == 0
            || self.sender.load(Ordering::SeqCst) != me
            || self.handles.load(Ordering::SeqCst) != 1
        {
            return None;
        }
        let clock = STATE.try_with(ThreadState::clock).ok()?;
        let mark = Arc::new(Mark {
            k: self.sent.load(Ordering::SeqCst),
            clock,
            done: parking_lot::Mutex::new(None),
            over: parking_lot::Condvar::new(),
        });
        self.marks.lock().push_back(Arc::clone(&mark));
        self.marked.fetch_add(1, Ordering::SeqCst);
        Some(mark)
    }

    /// The marked send is over (`put`: its value went in, else the receiver is gone or a report
    /// stopped it, and the mark leaves): the sender's later acts are no longer before that
    /// message. The trace shows the order as a `fork` of the message (a thread number of its
    /// own, that does nothing else) by the sender here, and its `join` by the receiver.
    fn marked_sent(&self, mark: &Mark, put: bool) {
        if !put {
            let mut marks = self.marks.lock();
            if let Some(i) = marks.iter().position(|m| std::ptr::eq(&**m, mark)) {
                marks.remove(i);
                self.marked.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let message = STATE
            .try_with(|s| {
                let me = s.id();
                let message = if put && recorder::recording() {
                    let m = super::state::new_thread_id();
                    recorder::on_fork(me, m);
                    m
                } else {
                    0
                };
                s.tick_clock();
                message
            })
            .unwrap_or(0);
        *mark.done.lock() = Some(message);
        mark.over.notify_all();
    }

    /// A `SyncSender` handle that another thread sent through is used by this thread, at
    /// `site`: shared by reference (`Arc<SyncSender>`) or moved, which lockcheck cannot tell. If a
    /// receive already joined a waiting send's clock, that order assumed one sending thread
    /// (module docs, "Happens-before through the message"): with the handle shared, another
    /// schedule could have put this thread's message in that place, and an inversion through
    /// the earlier send may go unreported. Said once per process, as an `incomplete` finding
    /// (limit `channel-message-order`); the order already applied stays.
    #[cold]
    #[inline(never)]
    fn moved_after_join(&self, site: &'static Location<'static>) {
        if !self.joined.load(Ordering::Relaxed)
            || !super::notice::first(super::notice::Limit::ChannelMessageOrder)
        {
            return;
        }
        let Ok(thread) = STATE.try_with(ThreadState::id) else {
            return;
        };
        let ids = self.meta.ids(LockKind::Channel);
        let chan = LockRef::new(ids.inst, ids.class);
        let v = Violation::inversion(
            ViolationKind::Incomplete {
                limit: "channel-message-order",
                bound: 1,
            },
            vec![EdgeInfo {
                thread: super::state::shared_thread_name(thread).to_string(),
                thread_id: thread,
                held: chan.clone(),
                held_mode: Mode::Exclusive,
                held_site: site.to_string(),
                acquired: chan,
                mode: Mode::Exclusive,
                site: site.to_string(),
                other_held: Vec::new(),
                backtrace: None,
                retried: false,
            }],
        );
        super::report::publish(v);
    }

    /// A receive got a message.
    #[inline]
    fn received_one(&self) {
        let m = self.received.fetch_add(1, Ordering::SeqCst);
        if self.marked.load(Ordering::SeqCst) != 0 {
            self.join_mark(m);
        }
    }

    /// The receive got message `m`: if a waiting send marked it, the receiving thread joins the
    /// sender's clock once that send is over (it is, but for its bookkeeping: waited for at
    /// most [`MARK_WAIT`], else nothing is joined), unless a second sender came since: then the
    /// order of the messages is one schedule's, and nothing is joined.
    #[cold]
    #[inline(never)]
    fn join_mark(&self, m: u64) {
        let mark = {
            let mut marks = self.marks.lock();
            let mut got = None;
            while let Some(k) = marks.front().map(|f| f.k) {
                if k > m {
                    break;
                }
                let f = marks.pop_front().expect("front seen");
                self.marked.fetch_sub(1, Ordering::SeqCst);
                if k == m {
                    got = Some(f);
                }
            }
            got
        };
        let Some(mark) = mark else { return };
        if self.sender.load(Ordering::SeqCst) == MIXED {
            return;
        }
        let message = {
            let mut done = mark.done.lock();
            let until = Instant::now() + MARK_WAIT;
            while done.is_none() {
                if mark.over.wait_until(&mut done, until).timed_out() {
                    break;
                }
            }
            *done
        };
        let Some(message) = message else { return };
        let _ = STATE.try_with(|s| {
            self.joined.store(true, Ordering::Relaxed);
            if super::state::with_slow(|slow| slow.clock.join(&mark.clock)).is_some() {
                s.bump_epoch();
                if message != 0 {
                    recorder::on_join(s.id(), message, false);
                }
            }
        });
    }

    /// The calling thread uses the receiving end: it holds the channel from now on (no edge:
    /// taking the receiver is no wait). A previous owner's hold is posted to it.
    #[inline]
    fn hold(&self, site: &'static Location<'static>) {
        let Ok(me) = STATE.try_with(ThreadState::id) else {
            return;
        };
        if self.holder.load(Ordering::Relaxed) == me {
            if self.fresh.load(Ordering::Relaxed) {
                self.settle(true);
            }
            return;
        }
        self.take_over(me, site);
    }

    /// The receiver's first use (or drop): the channel is fresh no more. `mine`: by the creating
    /// thread, which held it all along: its deferred dependencies join the graph, and a cycle
    /// they close is reported now, without panicking (after the fact). Else they are forgotten:
    /// the receiver may have left the creating thread before them.
    #[cold]
    #[inline(never)]
    fn settle(&self, mine: bool) {
        if !self.fresh.swap(false, Ordering::SeqCst) {
            return;
        }
        FRESH_LIVE.fetch_sub(1, Ordering::Relaxed);
        let deferred = std::mem::take(&mut *self.deferred.lock());
        if !mine {
            return;
        }
        for d in deferred {
            hooks::add_late_dependency(graph::Request {
                thread: d.thread,
                inst: d.inst,
                class: d.class,
                mode: d.mode,
                site: d.site,
                held: &d.held,
                clock: d.clock,
            });
        }
    }

    #[cold]
    #[inline(never)]
    fn take_over(&self, me: u64, site: &'static Location<'static>) {
        let old = self.holder.swap(me, Ordering::AcqRel);
        if old == me {
            return;
        }
        if old != 0 {
            // Another thread's first use: the creator's deferred dependencies go.
            self.settle(false);
        }
        if old != 0 {
            if let Some(ids) = self.meta.assigned() {
                handoff::post(old, ids, Release::Channel);
            }
        }
        hold_here(&self.meta, site);
    }

    /// The receiving end is dropped by the calling thread: nobody holds the channel any more.
    fn let_go(&self) {
        let me = STATE.try_with(ThreadState::id).unwrap_or(0);
        // Dropped by the thread that holds it: a use, as for an owned guard.
        if self.holder.load(Ordering::Relaxed) == me {
            self.settle(true);
        } else {
            self.settle(false);
        }
        let old = self.holder.swap(0, Ordering::AcqRel);
        if old == 0 {
            return;
        }
        if old == me {
            hooks::released(&self.meta, Mode::Shared);
        } else if let Some(ids) = self.meta.assigned() {
            handoff::post(old, ids, Release::Channel);
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
        if self.fresh.swap(false, Ordering::SeqCst) {
            FRESH_LIVE.fetch_sub(1, Ordering::Relaxed);
        }
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
// Holds taken over by another thread (see the module docs; the mailbox is `handoff`'s).

/// Takes this thread's hold of channel `ids` off its held set: another thread used the
/// receiver since (a `Release::Channel` entry of the mailbox, see `handoff::drain_held`).
pub(crate) fn drop_hold(s: &ThreadState, ids: Ids) {
    let h = s.remove_last(|h| h.inst == ids.inst && h.mode == Mode::Shared);
    if let Some(h) = h {
        if h.recorded || (h.since.is_some() && recorder::recording()) {
            let ns = h.since.map_or(0, |t| t.elapsed().as_nanos() as u64);
            recorder::on_release(ids, ns);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A receiver moved before its first use (see the module docs).

/// Channels still fresh in the whole process (created, their receiver used by no thread yet, not
/// dropped): while there are none, which is almost always, a new dependency skips
/// [`defer_fresh`] with one load (it cost about 75 instructions per never-seen edge). A thread
/// sees its own channels' creation in this count (program order), which is all `defer_fresh`
/// needs: it looks at the channels its own thread created.
static FRESH_LIVE: AtomicUsize = AtomicUsize::new(0);

/// Whether any channel is still fresh (see [`FRESH_LIVE`]).
#[inline]
pub(crate) fn any_fresh() -> bool {
    FRESH_LIVE.load(Ordering::Relaxed) != 0
}

thread_local! {
    /// The channels this thread created, perhaps still fresh: (instance, gate).
    static FRESH: RefCell<Vec<(u64, Weak<Gate>)>> = const { RefCell::new(Vec::new()) };
}

/// Before a dependency of this thread (`thread`: not a task's) goes to the graph: takes out of
/// `held` the channels this thread created whose receiver nobody has used yet, and keeps the
/// dependency over the full held set with each of them until their first use ([`Gate::settle`]).
/// A channel a sender waits on now stays in: then the acquisition may close a deadlock at once
/// (sled#1515: the creator drops its unused receiver's owner, locking what the waiting sender
/// holds), reported as without the deferral.
pub(crate) fn defer_fresh(
    s: &ThreadState,
    thread: u64,
    inst: u64,
    class: u32,
    mode: Mode,
    site: &'static Location<'static>,
    held: &mut Vec<Held>,
) {
    if thread != s.id() {
        return;
    }
    let Ok(Some(gates)) = FRESH.try_with(|f| {
        let f = f.try_borrow().ok()?;
        let gates: Vec<(u64, Arc<Gate>)> = f
            .iter()
            .filter(|(i, _)| *i != inst && held.iter().any(|h| h.inst == *i))
            .filter_map(|(i, g)| Some((*i, g.upgrade()?)))
            .collect();
        Some(gates)
    }) else {
        return;
    };
    if gates.is_empty() {
        return;
    }
    let full = held.clone();
    let clock = s.clock();
    for (i, gate) in gates {
        if !gate.fresh.load(Ordering::SeqCst) || gate.waiting.load(Ordering::SeqCst) != 0 {
            continue;
        }
        {
            let mut d = gate.deferred.lock();
            if d.len() >= DEFERRED_LIMIT {
                drop(d);
                deferred_limit_hit(thread, inst, class, mode, site, &full, i);
                continue;
            }
            d.push(Deferred {
                thread,
                inst,
                class,
                mode,
                site,
                held: full.clone(),
                clock: clock.clone(),
            });
        }
        held.retain(|h| h.inst != i);
    }
}

/// [`DEFERRED_LIMIT`] reached: reported once per process.
#[cold]
fn deferred_limit_hit(
    thread: u64,
    inst: u64,
    class: u32,
    mode: Mode,
    site: &'static Location<'static>,
    held: &[Held],
    chan: u64,
) {
    if !super::notice::first(super::notice::Limit::DeferredChannelDependencies) {
        return;
    }
    let Some(h) = held.iter().find(|h| h.inst == chan) else {
        return;
    };
    let v = Violation::inversion(
        ViolationKind::Incomplete {
            limit: "deferred-channel-dependencies",
            bound: DEFERRED_LIMIT as u64,
        },
        vec![EdgeInfo {
            thread: super::state::shared_thread_name(thread).to_string(),
            thread_id: thread,
            held: LockRef::new(h.inst, h.class),
            held_mode: h.mode,
            held_site: h.site.to_string(),
            acquired: LockRef::new(inst, class),
            mode,
            site: site.to_string(),
            other_held: Vec::new(),
            backtrace: None,
            retried: false,
        }],
    );
    super::report::publish(v);
}

// ---------------------------------------------------------------------------------------------
// A receive that waits (see the module docs, "A receive that waits for a message").

/// The sending side of a channel, as a receive that waits sees it: a lock of kind `channel`
/// (class `senders of channel created at file:line:col`) that such a receive requests, and the
/// live sender handles with the thread that last used each ("placed"), or none yet.
pub(crate) struct Senders {
    meta: Meta,
    /// Live handles, each at its own index (stored in the handle), so that a clone or a drop
    /// costs O(1) however many handles live (a fan-in of thousands of clones).
    slots: parking_lot::Mutex<Slots>,
    next: AtomicU64,
}

/// A slab of live handles: (handle number, lockcheck's number of the thread that last sent
/// through it, 0: none yet; where it last sent, else where it was made), `None` for a free
/// index, with the free indices to reuse. Written here rather than taken from a crate: the
/// runtime crate takes no new dependency, and this is a vector and a free list.
struct Slots {
    live: Vec<Option<(u64, u64, &'static Location<'static>)>>,
    free: Vec<usize>,
}

impl Slots {
    /// Stores a new handle's slot: its index.
    fn add(&mut self, slot: (u64, u64, &'static Location<'static>)) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.live[i] = Some(slot);
                i
            }
            None => {
                self.live.push(Some(slot));
                self.live.len() - 1
            }
        }
    }

    fn remove(&mut self, index: usize) {
        if let Some(s) = self.live.get_mut(index) {
            if s.take().is_some() {
                self.free.push(index);
            }
        }
    }
}

/// What a receive's wait is stuck behind, at one moment (see [`Senders::placement`]).
pub(crate) struct Placement {
    /// The threads that last sent through a live handle (the receiving thread left out), with
    /// where.
    pub owners: Vec<(u64, &'static Location<'static>)>,
    /// Live handles never used: where they are now is unknown (a handle moves with no trace).
    /// Those last used by the receiving thread itself are in neither list (they cannot send
    /// while it waits).
    pub unplaced: usize,
    /// Where the first unplaced handle was made.
    pub unplaced_site: Option<&'static Location<'static>>,
}

/// How long a receive waits, holding locks, before its senders' placement may call it stuck
/// (see the module docs): a handle may have moved since its last use, or be about to send for
/// the first time.
pub const RECV_GRACE: Duration = Duration::from_secs(1);

/// How long a receive waits, holding locks, before a sender handle never used yet may be
/// assumed to be with a thread stuck behind those locks (see the module docs). Longer than
/// [`RECV_GRACE`]: the assumption is a guess (the handle may be with a thread busy elsewhere
/// that sends later, while an unrelated thread waits for the receiver's lock), and a wrong
/// guess is a deadlock report that gives up the receiver's locks in a correct program; the
/// longer the whole picture stays still, the less likely that is. A real hang of this shape is
/// reported this much later.
pub const UNPLACED_GRACE: Duration = Duration::from_secs(5);

impl Senders {
    fn new(site: &'static Location<'static>) -> Arc<Senders> {
        Arc::new(Senders {
            meta: Meta::new(ClassSrc::Named(senders_class(site))),
            slots: parking_lot::Mutex::new(Slots {
                live: vec![Some((1, 0, site))],
                free: Vec::new(),
            }),
            next: AtomicU64::new(2),
        })
    }

    /// A new handle (a clone), with no user yet: its index among the slots.
    fn add(&self, site: &'static Location<'static>) -> usize {
        let h = self.next.fetch_add(1, Ordering::Relaxed);
        self.slots.lock().add((h, 0, site))
    }

    fn remove(&self, index: usize) {
        self.slots.lock().remove(index);
    }

    /// The handle at `index` was used by thread `me` (it sends from there).
    #[cold]
    #[inline(never)]
    fn placed(&self, index: usize, me: u64, site: &'static Location<'static>) {
        if let Some(Some(slot)) = self.slots.lock().live.get_mut(index) {
            slot.1 = me;
            slot.2 = site;
        }
    }

    /// Where the live handles are, for a receive by thread `receiver`.
    pub(crate) fn placement(&self, receiver: u64) -> Placement {
        // Oldest handle first (an index is reused, a handle number is not), as they were made.
        let mut slots: Vec<(u64, u64, &'static Location<'static>)> =
            self.slots.lock().live.iter().flatten().copied().collect();
        slots.sort_unstable_by_key(|s| s.0);
        let mut owners: Vec<(u64, &'static Location<'static>)> = Vec::new();
        let mut seen: HashSet<u64> = HashSet::new();
        let mut unplaced = 0;
        let mut unplaced_site = None;
        for &(_, owner, site) in &slots {
            if owner == receiver {
                continue;
            }
            if owner == 0 {
                unplaced += 1;
                unplaced_site.get_or_insert(site);
            } else if seen.insert(owner) {
                owners.push((owner, site));
            }
        }
        Placement {
            owners,
            unplaced,
            unplaced_site,
        }
    }
}

impl Drop for Senders {
    fn drop(&mut self) {
        super::forget(&self.meta);
    }
}

/// The class name of a channel's senders (`senders of channel created at file:line:col`), made
/// once per creation site and kept for the process (a class name must be `'static`): as many
/// as there are `channel`/`sync_channel` calls in the program's text.
fn senders_class(site: &'static Location<'static>) -> &'static str {
    static NAMES: parking_lot::Mutex<Vec<(usize, &'static str)>> =
        parking_lot::Mutex::new(Vec::new());
    let key = std::ptr::from_ref(site) as usize;
    let mut names = NAMES.lock();
    if let Some(&(_, n)) = names.iter().find(|(k, _)| *k == key) {
        return n;
    }
    let n: &'static str = Box::leak(
        format!(
            "senders of channel created at {}:{}:{}",
            site.file(),
            site.line(),
            site.column()
        )
        .into_boxed_str(),
    );
    names.push((key, n));
    n
}

thread_local! {
    /// The channel a send of this thread is waiting on now (see [`sending_on`]).
    static SENDING: RefCell<Option<Weak<Gate>>> = const { RefCell::new(None) };
}

/// Notes the channel a send waits on while it lives (see [`sending_on`]).
struct SendingOn;

impl SendingOn {
    fn new(gate: &Arc<Gate>) -> SendingOn {
        let _ = SENDING.try_with(|r| {
            if let Ok(mut r) = r.try_borrow_mut() {
                *r = Some(Arc::downgrade(gate));
            }
        });
        SendingOn
    }
}

impl Drop for SendingOn {
    fn drop(&mut self) {
        let _ = SENDING.try_with(|r| {
            if let Ok(mut r) = r.try_borrow_mut() {
                *r = None;
            }
        });
    }
}

/// The channel of the send this thread is waiting in, if the lock `inst` is it: the wait-for
/// graph's waiter then waits for the channel's current holder (see [`gate_holder`]).
pub(crate) fn sending_on(inst: u64) -> Option<Weak<Gate>> {
    waiting_in(&SENDING, inst, |g| &g.meta)
}

/// What this thread's wait slot `slot` (a send's gate, a receive's senders) names, if its lock
/// is `inst`.
fn waiting_in<T>(
    slot: &'static std::thread::LocalKey<RefCell<Option<Weak<T>>>>,
    inst: u64,
    meta: impl Fn(&T) -> &Meta,
) -> Option<Weak<T>> {
    slot.try_with(|r| {
        let r = r.try_borrow().ok()?;
        let w = r.as_ref()?;
        let x = w.upgrade()?;
        (meta(&x).assigned()?.inst == inst).then(|| w.clone())
    })
    .ok()
    .flatten()
}

/// The thread that holds a channel now (0: none), whether its receiver is still fresh (the
/// creator's hold unconfirmed: the receiver may have moved; module docs, "A receiver moved
/// before its first use"), and the address of its [`Senders`] (a holder waiting in a receive
/// of this channel takes the message: it keeps no send waiting). `None`: the channel is gone.
pub(crate) fn gate_holder(gate: &Weak<Gate>) -> Option<GateHolder> {
    let g = gate.upgrade()?;
    // `sent` first: a receive between the two reads makes the count smaller, never larger (a
    // message is counted sent once it is in, received once taken out).
    let sent = g.sent.load(Ordering::SeqCst);
    let in_channel = sent.saturating_sub(g.received.load(Ordering::SeqCst));
    Some(GateHolder {
        thread: g.holder.load(Ordering::SeqCst),
        fresh: g.fresh.load(Ordering::SeqCst),
        senders: g.senders,
        room: g.capacity > 0 && in_channel < g.capacity as u64,
    })
}

/// What [`gate_holder`] found.
#[derive(Clone, Copy)]
pub(crate) struct GateHolder {
    /// The holding thread (0: none).
    pub thread: u64,
    /// The receiver not used yet.
    pub fresh: bool,
    /// The address of the channel's [`Senders`].
    pub senders: usize,
    /// The channel has room now (fewer messages in it than its bound): a send waiting for room
    /// is about to get in, although its wait has not ended yet (a receive just made room). Its
    /// thread is not stuck: a joiner that received a message and then joins the sender found a
    /// cycle through a wait that was ending (tests/real_bugs_round9.rs, tylertoo#362's look).
    pub room: bool,
}

thread_local! {
    /// The senders a receive of this thread is waiting for now (see [`receiving`]).
    static RECEIVING: RefCell<Option<Weak<Senders>>> = const { RefCell::new(None) };
}

/// The senders of the receive this thread is waiting in, if the lock `inst` is theirs: the
/// wait-for graph's waiter then waits for any of them (see `watch::deadlock_cycle`).
pub(crate) fn receiving(inst: u64) -> Option<Weak<Senders>> {
    waiting_in(&RECEIVING, inst, |s| &s.meta)
}

/// A sender handle's part: its channel's senders, and its index there.
struct Handle {
    senders: Arc<Senders>,
    /// Its index among the senders' slots.
    id: usize,
    /// The thread that last used it (0: none yet), a copy of its slot's, read by every send.
    user: AtomicU64,
}

impl Handle {
    fn first(senders: Arc<Senders>) -> Handle {
        Handle {
            senders,
            id: 0,
            user: AtomicU64::new(0),
        }
    }

    fn another(&self, site: &'static Location<'static>) -> Handle {
        Handle {
            senders: self.senders.clone(),
            id: self.senders.add(site),
            user: AtomicU64::new(0),
        }
    }

    /// Before a send by the calling thread: the handle is that thread's from now on (and, with
    /// the opt-in prediction, the thread holds the channel's senders: see [`predicting`]).
    /// Whether another thread had sent through this very handle (it was moved, or is shared by
    /// reference).
    #[inline]
    fn sending(&self, site: &'static Location<'static>) -> bool {
        let me = STATE.try_with(ThreadState::id).unwrap_or(0);
        if me == 0 {
            return false;
        }
        let old = self.user.load(Ordering::Relaxed);
        if old != me {
            self.user.store(me, Ordering::Relaxed);
            self.senders.placed(self.id, me, site);
        }
        if predicting() {
            self.senders.hold(old, me, site);
        }
        old != 0 && old != me
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.senders.remove(self.id);
        if predicting() {
            let me = STATE.try_with(ThreadState::id).unwrap_or(0);
            if me != 0 && self.user.load(Ordering::Relaxed) == me {
                self.senders.let_go(me);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The opt-in prediction (see the module docs, "Predicting a receive's deadlock").

/// 0: not read yet; 1: off; 2: on.
static PREDICT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Whether a thread that sends through a handle holds the channel's senders from then on
/// (`LOCKCHECK_CHANNEL_RECV=on`, or [`set_recv_prediction`]).
#[inline]
pub(crate) fn predicting() -> bool {
    match PREDICT.load(Ordering::Relaxed) {
        0 => predicting_from_env(),
        v => v == 2,
    }
}

#[cold]
fn predicting_from_env() -> bool {
    let on = matches!(
        std::env::var("LOCKCHECK_CHANNEL_RECV").as_deref(),
        Ok("1") | Ok("on") | Ok("warn") | Ok("true")
    );
    let _ = PREDICT.compare_exchange(
        0,
        if on { 2 } else { 1 },
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    PREDICT.load(Ordering::Relaxed) == 2
}

/// Turns the opt-in prediction of receives' deadlocks on or off (see the module docs).
pub(crate) fn set_recv_prediction(on: bool) {
    PREDICT.store(if on { 2 } else { 1 }, Ordering::Relaxed);
}

/// This thread holds the channel lock `meta` (a receiver's channel or a channel's senders), in
/// mode `r` by a `try` (no wait, no edge). A hold of it posted back to this thread (it held it
/// before, and the handle came back) leaves first: the new hold must not stand next to a stale
/// one.
fn hold_here(meta: &Meta, site: &'static Location<'static>) {
    handoff::register_owner();
    let _ = STATE.try_with(handoff::drain_held);
    hooks::lock_nonblocking(
        meta,
        LockKind::Channel,
        Mode::Shared,
        How::Try,
        site,
        || true,
    );
}

impl Senders {
    /// Thread `me` sends through a handle (last used by `old`): it holds the senders (mode
    /// `r`, a `try`: no wait, no edge) unless it does already; `old`'s hold, if another thread,
    /// is posted to it (the handle moved), as a receiver's is.
    #[cold]
    #[inline(never)]
    fn hold(&self, old: u64, me: u64, site: &'static Location<'static>) {
        let ids = self.meta.ids(LockKind::Channel);
        if old != 0 && old != me {
            handoff::post(old, ids, Release::Channel);
        }
        let held = STATE
            .try_with(|s| {
                s.busy.get()
                    || s.find_held(|h| h.inst == ids.inst && h.mode == Mode::Shared)
                        .is_some()
            })
            .unwrap_or(true);
        if held {
            return;
        }
        hold_here(&self.meta, site);
    }

    /// Thread `me` drops a handle it last used: it no longer holds the senders (it takes them
    /// again at its next send through another handle).
    #[cold]
    #[inline(never)]
    fn let_go(&self, me: u64) {
        let Some(ids) = self.meta.assigned() else {
            return;
        };
        let _ = STATE.try_with(|s| {
            if s.id() == me && !s.busy.get() {
                drop_hold(s, ids);
            }
        });
    }

    /// A receive by this thread is about to wait: a hold of its own senders (it sends into its
    /// own channel too) leaves first, or the request would wait for itself.
    fn not_held_here(&self) {
        let Some(ids) = self.meta.assigned() else {
            return;
        };
        let _ = STATE.try_with(|s| {
            if !s.busy.get() {
                drop_hold(s, ids);
            }
        });
    }
}

/// The outcome of a receive that had to wait.
enum Got<T> {
    Msg(T),
    Gone,
    TimedOut,
}

impl<T> Receiver<T> {
    /// A receive found the channel empty: if the thread holds locks, the wait is a request of
    /// the channel's senders (see the module docs); else std's wait. `deadline`: a timed
    /// receive.
    #[cold]
    #[inline(never)]
    fn wait_message(&self, site: &'static Location<'static>, deadline: Option<Instant>) -> Got<T> {
        let from_std = |r: Result<T, RecvTimeoutError>| match r {
            Ok(t) => Got::Msg(t),
            Err(RecvTimeoutError::Disconnected) => Got::Gone,
            Err(RecvTimeoutError::Timeout) => Got::TimedOut,
        };
        let plain = |deadline: Option<Instant>| match deadline {
            None => match self.inner.recv() {
                Ok(t) => Got::Msg(t),
                Err(_) => Got::Gone,
            },
            Some(d) => from_std(
                self.inner
                    .recv_timeout(d.saturating_duration_since(Instant::now())),
            ),
        };
        let checked = STATE
            .try_with(|s| !s.busy.get() && s.holds_any())
            .unwrap_or(false);
        if !checked || crate::config::flags() & crate::config::flag::CHECK == 0 {
            return plain(deadline);
        }
        let senders = &self.senders;
        senders.not_held_here();
        let _ = RECEIVING.try_with(|r| {
            if let Ok(mut r) = r.try_borrow_mut() {
                *r = Some(Arc::downgrade(senders));
            }
        });
        let slot: Cell<Option<Got<T>>> = Cell::new(None);
        let try_raw = || match self.inner.try_recv() {
            Ok(t) => {
                slot.set(Some(Got::Msg(t)));
                true
            }
            Err(TryRecvError::Disconnected) => {
                slot.set(Some(Got::Gone));
                true
            }
            Err(TryRecvError::Empty) => false,
        };
        let r = hooks::lock_blocking(
            &senders.meta,
            LockKind::Channel,
            Mode::Exclusive,
            1,
            site,
            try_raw,
            || slot.set(Some(plain(deadline))),
            |d| {
                let d = match deadline {
                    Some(end) => {
                        let left = end.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            slot.set(Some(Got::TimedOut));
                            return true;
                        }
                        d.min(left)
                    }
                    None => d,
                };
                match self.inner.recv_timeout(d) {
                    Ok(t) => {
                        slot.set(Some(Got::Msg(t)));
                        true
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        slot.set(Some(Got::Gone));
                        true
                    }
                    Err(RecvTimeoutError::Timeout) => false,
                }
            },
        );
        let _ = RECEIVING.try_with(|r| {
            if let Ok(mut r) = r.try_borrow_mut() {
                *r = None;
            }
        });
        if let Err(v) = r {
            drop(slot);
            v.raise();
        }
        hooks::released(&senders.meta, Mode::Exclusive);
        slot.take().unwrap_or(Got::Gone)
    }
}

// ---------------------------------------------------------------------------------------------
// The API.

/// Creates an unbounded channel (std's): its sends never block, so they take no part in the lock
/// order; a receive that waits does (see the module docs).
#[must_use]
#[track_caller]
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let site = Location::caller();
    let (tx, rx) = std_mpsc::channel();
    let senders = Senders::new(site);
    (
        Sender {
            inner: tx,
            handle: Handle::first(senders.clone()),
        },
        Receiver {
            inner: rx,
            gate: None,
            senders,
        },
    )
}

/// The sending half of an unbounded channel ([`channel`]): std's `Sender`, which never blocks;
/// lockcheck notes which thread sends through it (see the module docs).
pub struct Sender<T> {
    inner: std_mpsc::Sender<T>,
    handle: Handle,
}

impl<T> Sender<T> {
    /// Sends `t` (never waits); an error (with `t`) if the receiver is gone.
    #[track_caller]
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        self.handle.sending(Location::caller());
        self.inner.send(t)
    }
}

impl<T> Clone for Sender<T> {
    #[track_caller]
    fn clone(&self) -> Sender<T> {
        Sender {
            inner: self.inner.clone(),
            handle: self.handle.another(Location::caller()),
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// Creates a bounded channel of `bound` messages (0: every send waits for a receive), a lock of
/// kind `channel` whose class is the caller's location (`channel created at file:line:col` in
/// reports), held by the calling thread until another thread uses the [`Receiver`].
#[must_use]
#[track_caller]
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    let site = Location::caller();
    let (tx, rx) = std_mpsc::sync_channel(bound);
    let senders = Senders::new(site);
    let gate = Arc::new(Gate::new(site, &senders, bound));
    gate.hold(site);
    if let Some(ids) = gate.meta.assigned() {
        let weak = Arc::downgrade(&gate);
        let _ = FRESH.try_with(|f| {
            if let Ok(mut f) = f.try_borrow_mut() {
                f.retain(|(_, g)| g.upgrade().is_some_and(|g| g.fresh.load(Ordering::Relaxed)));
                f.push((ids.inst, weak));
            }
        });
    }
    (
        SyncSender {
            inner: tx,
            gate: gate.clone(),
            handle: Handle::first(senders.clone()),
        },
        Receiver {
            inner: rx,
            gate: Some(gate),
            senders,
        },
    )
}

/// The sending half of a bounded channel ([`sync_channel`]): std's `SyncSender`, whose send
/// into a full channel is a request of the channel (see the module docs).
pub struct SyncSender<T> {
    inner: std_mpsc::SyncSender<T>,
    gate: Arc<Gate>,
    handle: Handle,
}

impl<T> SyncSender<T> {
    /// Sends `t`, waiting for room (with no capacity, for a receive); an error (with `t`) if
    /// the receiver is gone.
    #[track_caller]
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        if self.handle.sending(Location::caller()) {
            self.gate.moved_after_join(Location::caller());
        }
        self.gate
            .sending(STATE.try_with(ThreadState::id).unwrap_or(0));
        match self.inner.try_send(t) {
            Ok(()) => {
                self.gate.sent.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Err(TrySendError::Disconnected(t)) => Err(SendError(t)),
            Err(TrySendError::Full(t)) => self.send_waiting(t, Location::caller()),
        }
    }

    /// Sends `t` if there is room now (with no capacity, if a receiver is waiting); never waits.
    #[track_caller]
    pub fn try_send(&self, t: T) -> Result<(), TrySendError<T>> {
        if self.handle.sending(Location::caller()) {
            self.gate.moved_after_join(Location::caller());
        }
        self.gate
            .sending(STATE.try_with(ThreadState::id).unwrap_or(0));
        let r = self.inner.try_send(t);
        if r.is_ok() {
            self.gate.sent.fetch_add(1, Ordering::SeqCst);
        }
        r
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
                Ok(()) => {
                    super::watch::wait_over();
                    true
                }
                Err(TrySendError::Disconnected(t)) => {
                    slot.set(Some(t));
                    super::watch::wait_over();
                    true
                }
                Err(TrySendError::Full(t)) => {
                    slot.set(Some(t));
                    false
                }
            }
        };
        let me = STATE.try_with(ThreadState::id).unwrap_or(0);
        // Before the first try: the receiver may take the message at once.
        let mark = gate.mark(me);
        let _sending = SendingOn::new(&self.gate);
        let own = me != 0 && gate.holder.load(Ordering::Relaxed) == me;
        let done = own && gate.wait(&attempt, Instant::now().checked_add(GRACE));
        if !done {
            // With `send_guard` the full path leaves the mailbox to the entry points.
            handoff::drain();
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
                if let Some(mark) = &mark {
                    gate.marked_sent(mark, false);
                }
                drop(_waiting);
                drop(slot);
                v.raise();
            }
            hooks::released(&gate.meta, Mode::Exclusive);
        }
        let r = match slot.take() {
            None => {
                gate.sent.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Some(t) => Err(SendError(t)),
        };
        if let Some(mark) = &mark {
            gate.marked_sent(mark, r.is_ok());
        }
        r
    }
}

impl<T> Drop for SyncSender<T> {
    fn drop(&mut self) {
        self.gate.handles.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<T> Clone for SyncSender<T> {
    #[track_caller]
    fn clone(&self) -> SyncSender<T> {
        self.gate.handles.fetch_add(1, Ordering::SeqCst);
        SyncSender {
            inner: self.inner.clone(),
            gate: self.gate.clone(),
            handle: self.handle.another(Location::caller()),
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
    /// Its senders, for a receive that waits.
    senders: Arc<Senders>,
}

impl<T> Receiver<T> {
    #[inline]
    fn used(&self, site: &'static Location<'static>) {
        if let Some(g) = &self.gate {
            g.hold(site);
        }
    }

    #[inline]
    fn took<V, E>(&self, r: Result<V, E>) -> Result<V, E> {
        if let Some(g) = &self.gate {
            if r.is_ok() {
                g.received_one();
            }
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
        let r = match self.inner.try_recv() {
            Ok(t) => Ok(t),
            Err(TryRecvError::Disconnected) => Err(RecvError),
            Err(TryRecvError::Empty) => match self.wait_message(Location::caller(), None) {
                Got::Msg(t) => Ok(t),
                Got::Gone | Got::TimedOut => Err(RecvError),
            },
        };
        self.took(r)
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
        let r = match self.inner.try_recv() {
            Ok(t) => Ok(t),
            Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) => {
                match self.wait_message(Location::caller(), Instant::now().checked_add(timeout)) {
                    Got::Msg(t) => Ok(t),
                    Got::Gone => Err(RecvTimeoutError::Disconnected),
                    Got::TimedOut => Err(RecvTimeoutError::Timeout),
                }
            }
        };
        self.took(r)
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

/// A bounded channel's two locks as the wait-for graph sees them, for its unit tests: held
/// (its receiver used) by thread `receiver`, its one sender handle placed with thread `sender`.
#[cfg(test)]
pub(crate) fn test_channel(receiver: u64, sender: u64) -> (Arc<Gate>, Arc<Senders>) {
    let site = Location::caller();
    let senders = Senders::new(site);
    if let Some(Some(slot)) = senders.slots.lock().live.get_mut(0) {
        slot.1 = sender;
    }
    let gate = Arc::new(Gate::new(site, &senders, 0));
    gate.holder.store(receiver, Ordering::SeqCst);
    if gate.fresh.swap(false, Ordering::SeqCst) {
        FRESH_LIVE.fetch_sub(1, Ordering::Relaxed);
    }
    (gate, senders)
}
