//! The handle of a task started through [`crate::tokio::spawn`] or
//! [`crate::tokio::spawn_blocking`]: tokio's `JoinHandle`, whose wait for the task's end joins
//! the wait-for graph (see `track::join_wait`).

use super::track::{self, WaitReg};
use crate::checked::class::{ClassSrc, Meta};
use crate::checked::state::internal;
use parking_lot::Mutex as PlMutex;
use std::collections::HashMap;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

/// An owned permission to join a task (await its end), as `tokio::task::JoinHandle`, returned by
/// [`spawn`](crate::tokio::spawn) and [`spawn_blocking`](crate::tokio::spawn_blocking).
///
/// While it is awaited and the task has not finished, the awaiting task (or thread, in
/// `block_on`) waits for the task in lockcheck's wait-for graph: the task holds its own end
/// (a lock of kind `End`, as a thread's end, reported as `end of task spawned at file:line:col`)
/// until it finishes. A task that waits for a lock its joiner holds, directly or through other
/// waits, is a deadlock, reported when the cycle closes instead of both hanging; under
/// `LOCKCHECK=panic` the side that closes it panics at its line (the `.await` of this handle, or
/// the task's `lock().await`).
///
/// Dropping the handle detaches the task, as tokio's.
pub struct JoinHandle<T> {
    inner: ::tokio::task::JoinHandle<T>,
    /// Where the task was spawned (its end's class).
    spawned: &'static Location<'static>,
    /// The task's end as a lock of the wait-for graph, made at the first wait.
    end: Option<Meta>,
    /// The wait registered while the task runs and this handle is pending.
    wait: Option<WaitReg>,
}

impl<T> JoinHandle<T> {
    pub(super) fn new(
        inner: ::tokio::task::JoinHandle<T>,
        spawned: &'static Location<'static>,
    ) -> Self {
        JoinHandle {
            inner,
            spawned,
            end: None,
            wait: None,
        }
    }

    /// Aborts the task (as `tokio::task::JoinHandle::abort`).
    pub fn abort(&self) {
        self.inner.abort();
    }

    /// Whether the task has finished (as `tokio::task::JoinHandle::is_finished`).
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// A handle that aborts the task without joining it (as
    /// `tokio::task::JoinHandle::abort_handle`).
    pub fn abort_handle(&self) -> ::tokio::task::AbortHandle {
        self.inner.abort_handle()
    }

    /// The task's id (as `tokio::task::JoinHandle::id`).
    pub fn id(&self) -> ::tokio::task::Id {
        self.inner.id()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, ::tokio::task::JoinError>;

    /// `#[track_caller]`: a deadlock this wait closes is raised (under `panic`) at the user's
    /// `.await`.
    #[track_caller]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll(cx) {
            Poll::Ready(r) => {
                this.wait = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                // Registered again at every pending poll: the handle may have stopped being
                // awaited in between without being dropped (`&mut handle` in a `select!`), and
                // the joiner may hold other locks now.
                this.wait = None;
                let spawned = this.spawned;
                let end = this
                    .end
                    .get_or_insert_with(|| Meta::new(ClassSrc::Named(end_class(spawned))));
                let id = this.inner.id();
                match track::join_wait(end, id, spawned, Location::caller()) {
                    Ok(reg) => this.wait = reg,
                    Err(v) => v.raise(),
                }
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        self.wait = None;
        if let Some(end) = &self.end {
            crate::checked::forget(end);
        }
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.inner.id())
            .field("spawned", &format_args!("{}", self.spawned))
            .finish()
    }
}

/// A spawn site: file, line, column.
type SiteKey = (&'static str, u32, u32);

/// Class names of task ends, one per spawn site (a bounded set: sites are code locations).
static END_CLASSES: PlMutex<Option<HashMap<SiteKey, &'static str>>> = PlMutex::new(None);

/// `end of task spawned at file:line:col`, made once per spawn site (a thread's end is named
/// alike: `end of thread spawned at ...`).
fn end_class(site: &'static Location<'static>) -> &'static str {
    let mut m = internal(&END_CLASSES);
    m.get_or_insert_with(HashMap::new)
        .entry((site.file(), site.line(), site.column()))
        .or_insert_with(|| Box::leak(format!("end of task spawned at {site}").into_boxed_str()))
}
