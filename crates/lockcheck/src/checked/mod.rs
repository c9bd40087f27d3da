//! The instrumented locks, always compiled in, whatever the build profile.
//!
//! The crate root re-exports these in builds with instrumentation on (see the crate docs) and
//! parking_lot's plain locks otherwise. Use this module directly to force checking in one place
//! of a release build, or to compare both in one benchmark.

pub(crate) mod barrier;
mod byte_mutex;
pub(crate) mod channel;
pub(crate) mod class;
mod condvar;
mod fair;
pub(crate) mod fork;
pub(crate) mod graph;
pub(crate) mod handoff;
pub(crate) mod hooks;
pub(crate) mod notice;
pub(crate) mod once;
pub(crate) mod policy;
mod raw;
pub(crate) mod recorder;
mod reentrant;
pub(crate) mod report;
pub(crate) mod state;
pub(crate) mod unwind;
mod variants;
pub(crate) mod watch;
mod word_rwlock;

pub use barrier::{Barrier, BarrierWaitResult};
pub use condvar::{Condvar, WaitTimeoutResult};

/// std's `mpsc` channels with bounded channels in the lock order (what
/// [`lockcheck::sync::mpsc`](crate::sync::mpsc) is in instrumented builds; see `channel.rs`'s
/// docs): a send into a full [`sync_channel`](mpsc::sync_channel) waits for the thread that
/// owns its [`Receiver`](mpsc::Receiver), as for a lock that thread holds; a receive that waits
/// while its thread holds locks waits for any sender of the channel, and is reported as a
/// deadlock when every sender is stuck behind those locks.
pub mod mpsc {
    pub use super::channel::{
        channel, sync_channel, IntoIter, Iter, Receiver, RecvError, RecvTimeoutError, SendError,
        Sender, SyncSender, TryIter, TryRecvError, TrySendError,
    };
}

/// The opt-in prediction of receives' deadlocks (`watchdog::set_channel_recv_check`).
pub(crate) fn channel_recv_prediction(on: bool) {
    channel::set_recv_prediction(on);
}

pub use fair::RawFairMutex;
pub use once::{Once, OnceState};
pub use parking_lot::RawThreadId;
pub use raw::{RawMutex, RawRwLock};
pub use reentrant::{ReentrantRawMutex, ReentrantRawOf};

use class::{ClassSrc, Meta};
use std::panic::Location;

impl RawMutex {
    pub(crate) const fn for_site(
        site: &'static Location<'static>,
        name: Option<&'static str>,
    ) -> RawMutex {
        RawMutex::with_class(class_src(site, name))
    }
}

impl RawRwLock {
    pub(crate) const fn for_site(
        site: &'static Location<'static>,
        name: Option<&'static str>,
    ) -> RawRwLock {
        RawRwLock::with_class(class_src(site, name))
    }
}

pub(crate) const fn class_src(
    site: &'static Location<'static>,
    name: Option<&'static str>,
) -> ClassSrc {
    match name {
        Some(n) => ClassSrc::Named(n),
        None => ClassSrc::Site(site),
    }
}

crate::wrappers::lock_wrappers!(
    mutex: RawMutex = RawMutex::for_site,
    fair_mutex: RawFairMutex = RawFairMutex::for_site,
    reentrant: ReentrantRawMutex = ReentrantRawMutex::for_site, reentrant::at_site,
    rwlock: RawRwLock = RawRwLock::for_site,
);

/// `lock_api`'s guard of a [`ReentrantMutex`] locked through an `Arc` (`arc_lock`), named as
/// with parking_lot: `ArcReentrantMutexGuard<RawMutex, RawThreadId, T>`.
#[cfg(feature = "arc_lock")]
pub type ArcReentrantMutexGuard<R, G, T> =
    lock_api::ArcReentrantMutexGuard<<R as ReentrantRawOf>::Raw, G, T>;

/// A lock instance is gone: its node leaves the instance graph (classes stay).
pub(crate) fn forget(meta: &Meta) {
    if let Some(inst) = meta.graph_instance() {
        // Dropping a lock inside lockcheck's own work (or at thread exit) must not re-enter.
        let _ = state::as_busy(|_| graph::forget_instance(inst));
    }
    if let Some(ids) = meta.assigned() {
        hooks::forget_foreign_release(ids.inst);
        // What the recorder noted of it for a later trace goes when the writer has written its
        // last use, or now when nothing records. Noted only of a lock marked written (a
        // semaphore of several permits) or in the graph (an RwLock's first writes are noted in
        // the graph before its `WRITTEN` bit is set, once they are no longer noted one by one).
        let noted = meta.was_written() || meta.graph_instance().is_some();
        if recorder::recording() {
            recorder::on_drop(ids, noted);
        } else if noted {
            recorder::forget_known(ids.inst);
        }
    }
}
