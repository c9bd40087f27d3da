//! A child forked while its parent records: a trace of its own (Linux, where `checked::fork`
//! registers the `pthread_atfork` child handler).
//!
//! The parent's recording is not the child's: its file (one open file, one offset) is shared,
//! the buffers of the parent's threads were copied into the child, and its writer thread was not.
//! A flush in the child used to write the parent's pending records a second time, and the child's
//! own events under the forking thread's number, into the parent's trace; and the recorder's
//! locks (the writer's, the streams', the pool's) may have been held at the fork by a thread the
//! fork left behind, so that the child's first flush or `record::start` could block forever.
//!
//! So the child handler ([`in_child`]) only notes whether one of the recorder's locks was held at
//! the fork (atomic loads and stores, async-signal-safe as a handler in the child of a
//! multi-threaded process must be), and a new generation sends the forking thread's next record
//! down the cold path. That record starts the child's trace ([`start_child`]): the parent's
//! recording is let go (leaked: never written, never dropped), and a file next to the parent's
//! ([`child_path`]) gets
//! its header, then a `forked` event (the parent's pid, the forking thread). The child has no
//! writer thread (a thread of lockcheck's own would make `checked::fork` see a child with threads
//! and stay silent on the fork hang): its thread writes its blocks itself as they fill, a report
//! writes everything (as in any recording), and so does the exit handler.
//!
//! A blocking acquisition that `checked::fork` finds waiting for a thread the fork left behind is
//! recorded as a `left_held` event ([`on_left_held`]) before the report, which `lockcheck analyze`
//! turns into the same one-thread deadlock.

use super::{
    begin, head, init_from_env, note_site, push, site_seen_locally, site_word, Format, Ids, Rec,
    Site, BUFFERS, FORKED, FULL, GENERATION, KNOWN, ON, SEEN_SITES, SITE_TRACES, SPARE, STARTING,
    STATE_FLAG, WRITER, WRITER_THREAD,
};
#[cfg(feature = "tokio")]
use super::{SideTable, HELD_ACROSS, TASK_BUFS};
use crate::checked::state::STATE;
use lockcheck_core::trace::{How, Mode};
use parking_lot::Mutex as PlMutex;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// A lock left held by a fork, found by the child's only thread requesting it: `a` the lock,
/// `b` the request's site, the mode and class in `head`. The recorder's own kind, written as a
/// `left_held` event (in `.lct` version 5 as a record of version 2, at its place). Rare: one per
/// report.
pub(super) const K_LEFT_HELD: u8 = 0x83;

/// The recording's path as given (with `{pid}` if it had one) and format: a forked child's trace
/// is named from it ([`child_path`]).
static TEMPLATE: PlMutex<Option<(PathBuf, Format)>> = PlMutex::new(None);
/// The process that started the recording in progress (in a forked child: the parent).
static RECORDER_PID: AtomicU32 = AtomicU32::new(0);
/// The forking thread's kernel thread id, as the child handler saw it (0: none).
static FORK_TID: AtomicU64 = AtomicU64::new(0);
/// This process's recording is a forked child's: no writer thread, blocks written as they fill.
static SYNC: AtomicBool = AtomicBool::new(false);
/// Notes the path and format of a recording being started by this process (see [`TEMPLATE`]).
pub(super) fn note_template(path: &Path, format: Format) {
    *TEMPLATE.lock() = Some((path.to_path_buf(), format));
    RECORDER_PID.store(std::process::id(), Ordering::Relaxed);
    SYNC.store(false, Ordering::Relaxed);
}

/// The kernel's id of the calling thread.
fn tid() -> u64 {
    #[cfg(target_os = "linux")]
    // SAFETY: `gettid` takes no argument and cannot fail; async-signal-safe.
    unsafe {
        libc::syscall(libc::SYS_gettid) as u64
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// The forked child's copies of the recorder's locks were held at the fork (by threads the fork
/// left behind, such as the writer mid-pass): its trace cannot start without blocking forever.
static BUSY_AT_FORK: AtomicBool = AtomicBool::new(false);

/// Whether this forked process's copies of the recorder's locks were held at the fork.
pub(super) fn busy_at_fork() -> bool {
    BUSY_AT_FORK.load(Ordering::Relaxed)
}

/// The `pthread_atfork` child handler's part: see the module's text. Atomic operations only
/// (nothing allocates, locks or frees): whether one of the recorder's locks is held (by a thread
/// that does not exist here) is read, not waited for.
pub(super) fn in_child() {
    let state = STATE_FLAG.load(Ordering::Acquire);
    if state != ON && state != FORKED && state != STARTING {
        return;
    }
    FORK_TID.store(tid(), Ordering::Relaxed);
    let busy = WRITER.is_locked()
        || WRITER_THREAD.is_locked()
        || BUFFERS.is_locked()
        || SPARE.is_locked()
        || SITE_TRACES.is_locked()
        || SEEN_SITES.is_locked()
        || KNOWN.is_locked()
        || TEMPLATE.is_locked();
    #[cfg(feature = "tokio")]
    let busy = busy || TASK_BUFS.is_locked() || HELD_ACROSS.is_locked();
    BUSY_AT_FORK.store(busy, Ordering::Relaxed);
    // Blocks of the parent's streams are not this process's to write.
    FULL.store(0, Ordering::Relaxed);
    // The forking thread's producer still points into its stream of the parent's recording: a
    // new generation sends its next record down the cold path, which starts the child's trace.
    GENERATION.fetch_add(1, Ordering::AcqRel);
    STATE_FLAG.store(FORKED, Ordering::Release);
}

/// In a forked child that records nothing yet: starts its trace (see [`start_child`]); whether
/// it records now.
#[inline]
pub(super) fn started_here() -> bool {
    STATE_FLAG.load(Ordering::Acquire) == FORKED && init_from_env()
}

/// Whether this process's recording is a forked child's (no writer thread).
#[inline]
pub(super) fn synchronous() -> bool {
    SYNC.load(Ordering::Relaxed)
}

/// The trace of forked child `pid` of a recording to `template`: `{pid}` replaced by the child's
/// pid if the path has it; else `.child-PID` inserted before the extension
/// (`trace.jsonl` gives `trace.child-4242.jsonl`, `trace` gives `trace.child-4242`), so that the
/// parent's file is never opened, and the extension (which may choose the format) is kept.
pub(crate) fn child_path(template: &Path, pid: u32) -> PathBuf {
    if template.to_string_lossy().contains("{pid}") {
        return PathBuf::from(
            template
                .to_string_lossy()
                .replace("{pid}", &pid.to_string()),
        );
    }
    let stem = template.file_stem().unwrap_or_default().to_string_lossy();
    let name = match template.extension() {
        Some(ext) => format!("{stem}.child-{pid}.{}", ext.to_string_lossy()),
        None => format!("{stem}.child-{pid}"),
    };
    template.with_file_name(name)
}

/// Starts the forked child's trace (called once, by its first recorder call: `init_from_env`
/// claimed the start). Whether it records.
pub(super) fn start_child() -> bool {
    if BUSY_AT_FORK.load(Ordering::Relaxed) {
        notice("lockcheck's trace writer was busy on another thread at the fork");
        return false;
    }
    // The parent's recording, let go without being written or dropped (its file is the
    // parent's; its streams' blocks hold the parent's records): leaked.
    std::mem::forget(WRITER.lock().take());
    std::mem::forget(WRITER_THREAD.lock().take());
    std::mem::forget(std::mem::take(&mut *BUFFERS.lock()));
    #[cfg(feature = "tokio")]
    {
        std::mem::forget(TASK_BUFS.lock().take());
        std::mem::forget(std::mem::replace(
            &mut *HELD_ACROSS.lock(),
            SideTable::new(),
        ));
    }
    let Some((template, format)) = TEMPLATE.lock().clone() else {
        notice("the parent's trace path was being changed at the fork");
        return false;
    };
    let pid = std::process::id();
    let parent = RECORDER_PID.load(Ordering::Relaxed);
    // The forking thread, if it is the one recording first (a thread the child started first
    // is not it: 0, unknown).
    let thread = if FORK_TID.load(Ordering::Relaxed) == tid() {
        STATE.try_with(|s| s.id()).unwrap_or(0)
    } else {
        0
    };
    let path = child_path(&template, pid);
    // This child's own children are named from its trace (or the template with `{pid}`).
    let next = if template.to_string_lossy().contains("{pid}") {
        template
    } else {
        path.clone()
    };
    *TEMPLATE.lock() = Some((next, format));
    RECORDER_PID.store(pid, Ordering::Relaxed);
    SYNC.store(true, Ordering::Relaxed);
    match begin(path.clone(), format, Some((parent, thread)), false) {
        Ok(()) => true,
        Err(e) => {
            notice(&format!("{}: {e}", path.display()));
            false
        }
    }
}

/// Says once that this forked child records no trace, and why, with one plain `write(2)`
/// (stderr's lock, or a `tracing` subscriber's, may be held by a thread the fork left behind).
#[cold]
fn notice(why: &str) {
    use crate::checked::notice::{first, write_stderr, Limit};
    if !first(Limit::ForkedChildUnrecorded) {
        return;
    }
    write_stderr(&format!(
        "lockcheck: process {} was forked while its parent recorded a trace, and cannot record its \
         own ({why}): `lockcheck analyze` does not see its lock events\n",
        std::process::id()
    ));
}

/// A blocking acquisition of `ids` in mode `mode` at `site` waits for a thread a fork left behind
/// (`checked::fork`): its `left_held` event, written before the report (whose flush writes it).
pub(crate) fn on_left_held(ids: Ids, mode: Mode, site: Site) {
    if super::recording() {
        if !site_seen_locally(site) {
            note_site(site);
        }
        push(Rec {
            head: head(K_LEFT_HELD, mode, How::Blocking, ids.class),
            a: ids.inst,
            b: site_word(site),
            x: 0,
            ts: 0,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::child_path;
    use std::path::Path;

    #[test]
    fn a_childs_trace_is_named_next_to_its_parents() {
        assert_eq!(
            child_path(Path::new("t/trace.jsonl"), 42),
            Path::new("t/trace.child-42.jsonl")
        );
        assert_eq!(
            child_path(Path::new("trace"), 42),
            Path::new("trace.child-42")
        );
        assert_eq!(
            child_path(Path::new("t/{pid}.lct"), 42),
            Path::new("t/42.lct")
        );
        assert_eq!(
            child_path(Path::new("t/trace.child-7.lct"), 42),
            Path::new("t/trace.child-7.child-42.lct")
        );
    }
}
