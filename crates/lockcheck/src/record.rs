//! Recording traces for `lockcheck analyze`.
//!
//! Run a program (or a test suite) with `LOCKCHECK_TRACE=path` to record every lock event of the
//! process into `path` (`{pid}` in the path is replaced by the process id, so that a test run of
//! many processes writes one file each), or start and stop recording from code:
//!
//! ```no_run
//! lockcheck::record::start("target/lockcheck/{pid}.json").unwrap();
//! // ... the code under test ...
//! let written = lockcheck::record::stop().unwrap();
//! println!("trace: {:?}", written);
//! ```
//!
//! The format is JSON Lines (lockcheck's binary `.lct` for a path ending in `.lct`), documented in
//! `docs/trace-format.md`. Recording buffers per thread and writes in the background every 50 ms,
//! and at process exit. Every recording is written in the binary format while it runs; a JSON
//! Lines one is turned into JSON Lines when it stops ([`stop`], or the exit handler), through a
//! temporary file renamed over the path. A killed process leaves a trace that analyzes up to its
//! last complete event: for a JSON Lines path, the binary trace under that name, which
//! `lockcheck analyze` and `lockcheck convert` recognize by its content. Only instrumented locks
//! are recorded: with instrumentation compiled out the trace holds just its header.

use std::io;
use std::path::{Path, PathBuf};

/// Starts recording to `path` (`{pid}` replaced), ending any recording in progress.
pub fn start(path: impl AsRef<Path>) -> io::Result<()> {
    crate::checked::recorder::start(path.as_ref())
}

/// Stops recording: flushes all threads' events, writes per-class statistics and closes the file;
/// a JSON Lines recording is then turned into JSON Lines (read back and rewritten through a
/// temporary file in the same directory, renamed over the path: about 0.15 s per million events).
/// Returns the path written, or `None` if nothing was being recorded; an error if a write failed
/// (disk full, ...) at any point: events were lost from then on, so the trace is incomplete (also
/// said on stderr when it happens); or if the conversion failed, in which case the file is left
/// in the binary format, complete and readable by `lockcheck analyze`.
pub fn stop() -> io::Result<Option<PathBuf>> {
    crate::checked::recorder::stop()
}

/// Writes every thread's buffered events to the file now: `lockcheck analyze` reads them from
/// then on. A JSON Lines recording's file is in the binary format until the recording stops
/// (converting it at every flush would rewrite the whole file each time).
pub fn flush() {
    crate::checked::recorder::flush_all();
}

/// Whether a recording is in progress (starting one from `LOCKCHECK_TRACE` if set).
pub fn is_recording() -> bool {
    crate::checked::recorder::recording()
}
