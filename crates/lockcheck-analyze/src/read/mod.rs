//! Trace readers. Every format is translated into a stream of [`lockcheck_core::trace::Event`]s.
//!
//! STUB: the API below is the contract between the readers and the analysis; bodies are filled in
//! by the readers' author.
#![allow(missing_docs, unused_variables, dead_code)]

use lockcheck_core::trace::Event;
use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Which trace format a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// lockcheck's own JSON Lines (`.json`, `.jsonl`, default).
    Json,
    /// RAPID's text format (`.std`).
    Std,
    /// RAPID's binary format (`.data`, `.bin`).
    RapidBin,
}

impl InputFormat {
    /// Picks the format from a file's extension (unknown extensions: JSON).
    pub fn from_path(path: &Path) -> InputFormat {
        todo!()
    }
    /// Parses a `--input-format` value: `json`, `std`, `rapid-bin`.
    pub fn from_name(name: &str) -> Option<InputFormat> {
        todo!()
    }
}

/// Where in a file an error is: line and column (1-based) for text formats, byte offset for binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Line and column, 1-based.
    LineCol { line: u64, col: u64 },
    /// Byte offset, 0-based.
    Byte(u64),
}

/// A trace that could not be read. Display: `file:line:col: message` (or `file: byte N: message`).
#[derive(Debug, Clone)]
pub struct ReadError {
    pub file: String,
    pub pos: Option<Position>,
    pub message: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!()
    }
}
impl std::error::Error for ReadError {}

/// A streaming reader of one trace file, yielding events in file order.
pub struct TraceReader {}

impl TraceReader {
    /// Opens `path` in `format` (or the one its extension implies).
    pub fn open(path: &Path, format: Option<InputFormat>) -> Result<TraceReader, ReadError> {
        todo!()
    }
    /// Reads from any buffered reader; `name` is used in error messages.
    pub fn from_reader(name: &str, input: Box<dyn BufRead + Send>, format: InputFormat) -> TraceReader {
        todo!()
    }
    /// With `true`, a truncated last event ends the stream instead of being an error.
    pub fn allow_truncated(self, yes: bool) -> TraceReader {
        todo!()
    }
    /// Where the input was truncated, once the stream has ended at a truncated event.
    pub fn truncated(&self) -> Option<Position> {
        todo!()
    }
    /// The name used in messages.
    pub fn name(&self) -> &str {
        todo!()
    }
}

impl Iterator for TraceReader {
    type Item = Result<Event, ReadError>;
    fn next(&mut self) -> Option<Self::Item> {
        todo!()
    }
}

/// Expands the command line's inputs: files stay, directories become their trace files
/// (`*.json`, `*.jsonl`, `*.std`, `*.data`, recursively, sorted). Errors name the bad path.
pub fn expand_inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ReadError> {
    todo!()
}
