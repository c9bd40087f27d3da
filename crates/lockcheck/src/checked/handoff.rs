//! Guards released on another thread than the one that acquired them (the `send_guard`
//! feature makes guards `Send`).
//!
//! The held set is per thread, so such a release must leave the *acquiring* thread's set, or
//! that thread would go on "holding" the lock: false order edges from it, and a false
//! self-deadlock when it takes the lock again. The raw lock remembers the thread that holds it
//! exclusively ([`Owner`]); a release by another thread posts the hold to a mailbox instead of
//! touching its own set, and the owner takes it off its set at its next acquisition
//! ([`drain`]), before any check, which is the first moment a stale entry could matter. The
//! trace then shows the release on the owner's thread, so the analyzer sees what the runtime
//! saw.
//!
//! The send itself is invisible: until the guard is released, its hold stays with the acquiring
//! thread. So when that thread takes the lock again while it "holds" it exclusively, the hold
//! may be a guard it sent away, not a self-deadlock: it first waits up to `GRACE` (one second) for the lock
//! to come free (a sent guard released meanwhile posts its hold before unlocking), and only then
//! goes the normal way, which reports the self-deadlock.
//!
//! Shared (read) holds have no single owner: a read guard released elsewhere takes the
//! foreign-release path of `hooks::released` (its stale entry is dropped when the acquiring
//! thread next takes that lock). Without `send_guard` all of this compiles to nothing.

//!
//! The mailbox is shared with the bounded channels (`channel`): a receiver used by another
//! thread posts its previous owner's hold of the channel the same way. Each entry says how its
//! hold leaves ([`Release`]), and one [`drain_held`] serves both: called once on the full
//! acquisition path (`hooks::lock_slow` without `send_guard`; with it, by [`drain`] before the
//! raw acquisition, which every entry point calls).

use crate::checked::class::Ids;
use crate::checked::state::{internal, ThreadState, STATE};
use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How a posted hold leaves its owner's held set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Release {
    /// An exclusive or upgradable guard released on another thread (`send_guard`).
    #[cfg(feature = "send_guard")]
    Guard,
    /// A bounded channel whose receiver another thread used (`channel`): its shared hold.
    Channel,
}

/// Holds taken off their owners by other threads, to be dropped by the owners.
struct Mailbox {
    /// Threads that may own a hold (registered at their first exclusive acquisition with
    /// `send_guard`, or when they first hold a channel; removed at their exit): a hold of an
    /// exited thread went with it, nothing to post.
    live: BTreeSet<u64>,
    /// (owner, lock, how it leaves).
    entries: Vec<(u64, Ids, Release)>,
}

static MAILBOX: parking_lot::Mutex<Mailbox> = parking_lot::Mutex::new(Mailbox {
    live: BTreeSet::new(),
    entries: Vec::new(),
});
/// Entries in the mailbox: the one load an acquisition's check pays (see the module docs).
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// Registers the thread as a possible owner; at its exit, unregisters it and drops the holds
/// posted to it, so that the mailbox only ever holds entries of live threads (an entry left
/// behind would keep every acquisition of the process on the slow path).
struct ExitHook(u64);

impl ExitHook {
    fn register() -> ExitHook {
        let me = STATE.try_with(ThreadState::id).unwrap_or(0);
        internal(&MAILBOX).live.insert(me);
        ExitHook(me)
    }
}

impl Drop for ExitHook {
    fn drop(&mut self) {
        let mut mailbox = internal(&MAILBOX);
        mailbox.live.remove(&self.0);
        let before = mailbox.entries.len();
        mailbox.entries.retain(|&(owner, _, _)| owner != self.0);
        PENDING.fetch_sub(before - mailbox.entries.len(), Ordering::Release);
    }
}

thread_local! {
    static EXIT: ExitHook = ExitHook::register();
    /// [`EXIT`] is registered (or being registered) on this thread.
    static REGISTERED: Cell<bool> = const { Cell::new(false) };
}

/// Registers this thread as a possible owner. Why before an acquisition (with `send_guard`):
/// registering numbers the thread and inserts it into the mailbox, which allocates, and after
/// the acquisition that would call the global allocator with the lock just taken held; an
/// allocator that takes that lock (a tracking allocator whose statistics sit under a checked
/// mutex, taken first on a fresh thread) deadlocked on itself (`tests/alloc_lock_contended.rs`
/// with `send_guard`). Not while busy inside lockcheck (perhaps under `MAILBOX` itself): the
/// next acquisition registers.
#[cold]
#[inline(never)]
pub(crate) fn register_owner() {
    if STATE.try_with(|s| s.busy.get()).unwrap_or(true) {
        return;
    }
    // Set first: the registration's own allocations may take checked locks.
    let _ = REGISTERED.try_with(|r| r.set(true));
    let _ = EXIT.try_with(|_| ());
}

/// Posts the hold of `ids` to the thread `owner`, which took it, to leave as `how` says.
/// Nothing if `owner` is not registered (gone, or never held such a hold). A channel's hold
/// is posted once per owner (a thread holds a channel once).
pub(crate) fn post(owner: u64, ids: Ids, how: Release) {
    let mut m = internal(&MAILBOX);
    if !m.live.contains(&owner) {
        return;
    }
    if how == Release::Channel && m.entries.contains(&(owner, ids, how)) {
        return;
    }
    m.entries.push((owner, ids, how));
    PENDING.fetch_add(1, Ordering::Release);
}

/// Drops this thread's holds that other threads took over (call before checking an
/// acquisition against the held set, or taking a snapshot of it).
#[inline]
pub(crate) fn drain_held(s: &ThreadState) {
    if PENDING.load(Ordering::Acquire) != 0 {
        drain_slow(s);
    }
}

#[cold]
#[inline(never)]
fn drain_slow(s: &ThreadState) {
    // Busy inside lockcheck (perhaps under `MAILBOX` itself, through an allocator that takes a
    // checked lock): nothing is checked now, so the holds wait for the next acquisition.
    if s.busy.get() {
        return;
    }
    let me = s.id();
    let mine: Vec<(Ids, Release)> = {
        let mut mailbox = internal(&MAILBOX);
        let before = mailbox.entries.len();
        let mut mine = Vec::new();
        mailbox.entries.retain(|&(owner, ids, how)| {
            let keep = owner != me;
            if !keep {
                mine.push((ids, how));
            }
            keep
        });
        PENDING.fetch_sub(before - mailbox.entries.len(), Ordering::Release);
        mine
    };
    for (ids, how) in mine {
        match how {
            #[cfg(feature = "send_guard")]
            Release::Guard => crate::checked::hooks::released_elsewhere(ids),
            Release::Channel => super::channel::drop_hold(s, ids),
        }
    }
}

#[cfg(feature = "send_guard")]
pub(crate) use on::*;

#[cfg(not(feature = "send_guard"))]
pub(crate) use off::*;

#[cfg(not(feature = "send_guard"))]
mod off {
    use crate::checked::class::Meta;

    /// Nothing to remember when guards cannot move.
    #[derive(Debug)]
    pub(crate) struct Owner;

    impl Owner {
        pub(crate) const fn new() -> Owner {
            Owner
        }

        #[inline(always)]
        pub(crate) fn acquired(&self) {}

        #[inline(always)]
        pub(crate) fn released_here(&self, _meta: &Meta) -> bool {
            true
        }
    }

    #[inline(always)]
    pub(crate) fn drain() {}
}

#[cfg(feature = "send_guard")]
mod on {
    use super::{drain_slow, post, register_owner, Release, PENDING, REGISTERED};
    use crate::checked::class::Meta;
    use crate::checked::state::STATE;
    use lockcheck_core::trace::Mode;
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    /// The lockcheck thread number of the exclusive (or upgradable) holder; 0 when unknown.
    #[derive(Debug)]
    pub(crate) struct Owner(AtomicU64);

    fn me() -> u64 {
        STATE.try_with(|s| s.id()).unwrap_or(0)
    }

    impl Owner {
        pub(crate) const fn new() -> Owner {
            Owner(AtomicU64::new(0))
        }

        /// The calling thread now holds the lock exclusively (or upgradably).
        #[inline]
        pub(crate) fn acquired(&self) {
            // The thread registered as a possible owner before the acquisition (`drain`).
            self.0.store(me(), Ordering::Relaxed);
        }

        /// Before an exclusive (or upgradable) release: false when the calling thread is not
        /// the one that acquired the lock, in which case the hold was posted to its owner and
        /// the caller must not touch its own held set.
        #[inline]
        pub(crate) fn released_here(&self, meta: &Meta) -> bool {
            let owner = self.0.swap(0, Ordering::Relaxed);
            let Some(ids) = meta.assigned() else {
                return true;
            };
            if owner == 0 || owner == me() {
                return true;
            }
            // The owner may have made this lock a graph node: let dropping it clean up.
            meta.mark_in_graph();
            post(owner, ids, Release::Guard);
            false
        }
    }

    /// How long a thread that takes a lock it holds exclusively waits for a guard it may have
    /// sent away before the self-deadlock is reported (see the module docs).
    pub(crate) const GRACE: Duration = Duration::from_secs(1);

    /// Whether this thread holds the lock exclusively or upgradably (perhaps through a guard it
    /// sent away).
    #[cold]
    pub(crate) fn held_here(meta: &Meta) -> bool {
        let Some(ids) = meta.assigned() else {
            return false;
        };
        STATE
            .try_with(|s| {
                s.find_held(|h| {
                    h.inst == ids.inst && matches!(h.mode, Mode::Exclusive | Mode::Upgradable)
                })
                .is_some()
            })
            .unwrap_or(false)
    }

    /// Registers this thread as a possible owner at its first acquisition, then drops its holds
    /// that other threads took over, guards and channels alike (call before any check, and
    /// before the raw acquisition; the full path then checks no more, see the module docs).
    #[inline]
    pub(crate) fn drain() {
        if !REGISTERED.try_with(Cell::get).unwrap_or(true) {
            register_owner();
        }
        if PENDING.load(Ordering::Acquire) != 0 {
            drain_pending();
        }
    }

    #[cold]
    #[inline(never)]
    fn drain_pending() {
        let _ = STATE.try_with(drain_slow);
    }
}
