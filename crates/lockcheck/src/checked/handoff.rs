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
    use crate::checked::class::{Ids, Meta};
    use crate::checked::hooks::released_elsewhere;
    use crate::checked::state::{internal, STATE};
    use lockcheck_core::trace::Mode;
    use std::cell::Cell;
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::time::Duration;

    /// The lockcheck thread number of the exclusive (or upgradable) holder; 0 when unknown.
    #[derive(Debug)]
    pub(crate) struct Owner(AtomicU64);

    /// Holds released by other threads, to be dropped by their owners.
    struct Mailbox {
        /// Threads that may own a hold (registered at their first exclusive acquisition,
        /// removed at their exit): a hold of an exited thread went with it, nothing to post.
        live: BTreeSet<u64>,
        /// (owner, lock).
        entries: Vec<(u64, Ids)>,
    }

    static MAILBOX: parking_lot::Mutex<Mailbox> = parking_lot::Mutex::new(Mailbox {
        live: BTreeSet::new(),
        entries: Vec::new(),
    });
    /// Entries in the mailbox: the one load every acquisition pays with `send_guard`.
    static PENDING: AtomicUsize = AtomicUsize::new(0);

    /// Registers the thread as a possible owner; at its exit, unregisters it and drops the holds
    /// posted to it, so that the mailbox only ever holds entries of live threads (an entry left
    /// behind would keep every acquisition of the process on the slow path).
    struct ExitHook(u64);

    impl ExitHook {
        fn register() -> ExitHook {
            let me = me();
            internal(&MAILBOX).live.insert(me);
            ExitHook(me)
        }
    }

    impl Drop for ExitHook {
        fn drop(&mut self) {
            let mut mailbox = internal(&MAILBOX);
            mailbox.live.remove(&self.0);
            let before = mailbox.entries.len();
            mailbox.entries.retain(|&(owner, _)| owner != self.0);
            PENDING.fetch_sub(before - mailbox.entries.len(), Ordering::Release);
        }
    }

    thread_local! {
        static EXIT: ExitHook = ExitHook::register();
        /// [`EXIT`] is registered (or being registered) on this thread.
        static REGISTERED: Cell<bool> = const { Cell::new(false) };
    }

    /// Registers this thread as a possible owner, before its first acquisition. Why before:
    /// registering numbers the thread and inserts it into the mailbox, which allocates, and
    /// after the acquisition that would call the global allocator with the lock just taken
    /// held; an allocator that takes that lock (a tracking allocator whose statistics sit under
    /// a checked mutex, taken first on a fresh thread) deadlocked on itself
    /// (`tests/alloc_lock_contended.rs` with `send_guard`). Not while busy inside lockcheck
    /// (perhaps under `MAILBOX` itself): the next acquisition registers.
    #[cold]
    #[inline(never)]
    fn register_owner() {
        if STATE.try_with(|s| s.busy.get()).unwrap_or(true) {
            return;
        }
        // Set first: the registration's own allocations may take checked locks.
        let _ = REGISTERED.try_with(|r| r.set(true));
        let _ = EXIT.try_with(|_| ());
    }

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
            let mut mailbox = internal(&MAILBOX);
            if mailbox.live.contains(&owner) {
                mailbox.entries.push((owner, ids));
                PENDING.fetch_add(1, Ordering::Release);
            }
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
    /// that other threads released (call before any check, and before the raw acquisition).
    #[inline]
    pub(crate) fn drain() {
        if !REGISTERED.try_with(Cell::get).unwrap_or(true) {
            register_owner();
        }
        if PENDING.load(Ordering::Acquire) != 0 {
            drain_slow();
        }
    }

    #[cold]
    #[inline(never)]
    fn drain_slow() {
        // Busy inside lockcheck (perhaps under `MAILBOX` itself, through an allocator that takes a
        // checked lock): nothing is checked now, so the holds wait for the next acquisition.
        if STATE.try_with(|s| s.busy.get()).unwrap_or(true) {
            return;
        }
        let me = me();
        let mine: Vec<Ids> = {
            let mut mailbox = internal(&MAILBOX);
            let before = mailbox.entries.len();
            let mut mine = Vec::new();
            mailbox.entries.retain(|&(owner, ids)| {
                let keep = owner != me;
                if !keep {
                    mine.push(ids);
                }
                keep
            });
            PENDING.fetch_sub(before - mailbox.entries.len(), Ordering::Release);
            mine
        };
        for ids in mine {
            released_elsewhere(ids);
        }
    }
}
