//! Trace readers. Every format is translated into a stream of [`lockcheck_core::trace::Event`]s.
//!
//! Three formats are read (see `docs/trace-format.md`):
//!
//! - [`InputFormat::Json`]: lockcheck's own JSON Lines trace, one [`Event`] per line, first line a
//!   `header` of version [`FORMAT_VERSION`].
//! - [`InputFormat::Std`]: RAPID's text format, `T1|acq(L3)|42` (thread, operation, location).
//! - [`InputFormat::RapidBin`]: RAPID's binary format, a big-endian header and one `i64` per event.
//!
//! The research formats carry no class, site or thread-name information, so their readers invent
//! it: a header (`pid` 0, `program` the file name), a `thread` named `T<n>` on first sight, one
//! class per lock (key = the lock's name, kind [`LockKind::Unknown`](lockcheck_core::trace::LockKind)),
//! and a site `loc <location>` per location. Numbers are dense from 1 in order of first appearance.
//!
//! A [`TraceReader`] streams: it reads the file in large chunks and decodes a batch of events at a
//! time straight out of its read buffer (no copy and no allocation per event), so memory does not
//! grow with the length of a trace, and a single line longer than [`MAX_LINE_LEN`] is an error
//! rather than an allocation of that size. After the first error the iterator ends; the events
//! before the error are all yielded first.
//!
//! A trace whose last line has no newline and does not parse (or, in binary, whose last record is
//! partial or missing) is *truncated*: the traced process was probably killed while writing. By
//! default that is an error suggesting `--allow-truncated`; with
//! [`TraceReader::allow_truncated`] the stream ends cleanly before it and
//! [`TraceReader::truncated`] tells where.
//!
//! ```no_run
//! use lockcheck_analyze::read::TraceReader;
//! use std::path::Path;
//!
//! let reader = TraceReader::open(Path::new("run.jsonl"), None)?.allow_truncated(true);
//! for event in reader {
//!     let event = event?;
//!     println!("{event:?}");
//! }
//! # Ok::<(), lockcheck_analyze::read::ReadError>(())
//! ```

mod chunks;
mod json;
mod lct;
mod lines;
mod names;
mod rapidbin;
mod std_text;
#[cfg(test)]
mod tests;

use lockcheck_core::trace::{ClassNo, Event, LockKind, LockNo, SiteNo, ThreadNo, FORMAT_VERSION};
use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// The longest line a text reader accepts, in bytes (64 MiB). A longer line is an error: no sane
/// event is that long, and reading it whole could exhaust memory.
pub const MAX_LINE_LEN: usize = 64 << 20;

/// File extensions that [`expand_inputs`] picks up inside a directory.
pub const TRACE_EXTENSIONS: &[&str] = &["json", "jsonl", "std", "data", "lct"];

/// Which trace format a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// lockcheck's own JSON Lines (`.json`, `.jsonl`, default).
    Json,
    /// RAPID's text format (`.std`).
    Std,
    /// RAPID's binary format (`.data`, `.bin`, `.rapidbin`).
    RapidBin,
    /// lockcheck's binary format (`.lct`, see [`lockcheck_core::lct`]).
    Lct,
}

impl InputFormat {
    /// Picks the format from a file's extension (unknown extensions: JSON).
    pub fn from_path(path: &Path) -> InputFormat {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("std") => InputFormat::Std,
            Some("data" | "bin" | "rapidbin") => InputFormat::RapidBin,
            Some("lct") => InputFormat::Lct,
            _ => InputFormat::Json,
        }
    }

    /// The format of the trace at `path` whose first bytes are `head`, by its content wherever
    /// the content says: the `.lct` magic, a JSON object, RAPID's binary header (small counts:
    /// its first byte is below any text's; only under a name of no other format), a RAPID STD
    /// line (`T1|acq(L3)|42`); else by the
    /// extension ([`InputFormat::from_path`]). A JSON Lines recording is written as `.lct`
    /// until it stops and turned into JSON Lines then, so a recording process that died first
    /// left `.lct` bytes under a `.jsonl` name; a renamed trace reads as what it is. The one
    /// place the CLI's reader is chosen when `--input-format` is not given.
    pub fn detect(path: &Path, head: &[u8]) -> InputFormat {
        let by_name = InputFormat::from_path(path);
        if head.starts_with(&lockcheck_core::lct::MAGIC[..3]) {
            return InputFormat::Lct;
        }
        if by_name == InputFormat::RapidBin {
            // Binary counts: any first byte is possible.
            return by_name;
        }
        let first_line = head
            .split(|&b| b == b'\n')
            .find(|l| !l.trim_ascii().is_empty());
        match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => InputFormat::Json,
            // Thread count (a big-endian i16 of at most 1024 threads): 0 to 4, not text. The
            // weakest sign (any binary junk has it): not against a `.std` or `.lct` name, whose
            // reader says what is wrong with the bytes.
            Some(_) if head[0] <= 4 && head.len() >= 18 && by_name == InputFormat::Json => {
                InputFormat::RapidBin
            }
            Some(_) if first_line.is_some_and(looks_like_std) => InputFormat::Std,
            _ => by_name,
        }
    }

    /// Parses a `--input-format` value: `json`, `std`, `rapid-bin` (or `rapidbin`).
    pub fn from_name(name: &str) -> Option<InputFormat> {
        match name {
            "json" => Some(InputFormat::Json),
            "std" => Some(InputFormat::Std),
            "rapid-bin" | "rapidbin" => Some(InputFormat::RapidBin),
            "lct" => Some(InputFormat::Lct),
            _ => None,
        }
    }
}

/// Whether `line` has the shape of a RAPID STD event, `thread|op(operand)|...`.
fn looks_like_std(line: &[u8]) -> bool {
    let mut fields = line.trim_ascii().split(|&b| b == b'|');
    let (Some(t), Some(op)) = (fields.next(), fields.next()) else {
        return false;
    };
    !t.is_empty() && op.contains(&b'(') && op.ends_with(b")")
}

/// Where in a file an error is: line and column (1-based) for text formats, byte offset for binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Line and column, 1-based.
    LineCol {
        /// Line number, 1-based.
        line: u64,
        /// Column (byte within the line), 1-based.
        col: u64,
    },
    /// Byte offset, 0-based.
    Byte(u64),
    /// The n-th event of the file (1-based, in the order the reader yields them, declarations
    /// included): where the replay, not the reader, finds a problem (more locks than the
    /// analyzer numbers).
    Event(u64),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::LineCol { line, col } => write!(f, "{line}:{col}"),
            Position::Byte(b) => write!(f, "byte {b}"),
            Position::Event(n) => write!(f, "event {n}"),
        }
    }
}

/// A trace that could not be read. Display: `file:line:col: message` (or `file: byte N: message`,
/// `file: event N: message` where the replay finds it, or `file: message` when the problem has no
/// position, such as a file that cannot be opened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// The file (or the name given to [`TraceReader::from_reader`]).
    pub file: String,
    /// Where in the file, if the problem is at a place in it.
    pub pos: Option<Position>,
    /// What is wrong, as a sentence fragment without the file and position.
    pub message: String,
}

impl ReadError {
    /// An error in `file` at `pos`.
    pub fn new(file: &str, pos: Option<Position>, message: impl Into<String>) -> ReadError {
        ReadError {
            file: file.to_owned(),
            pos,
            message: message.into(),
        }
    }
}

impl fmt::Display for ReadError {
    /// The file and the message through [`printable`]: a message may quote a token of the file,
    /// which must not reach a terminal raw.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (file, message) = (printable(&self.file), printable(&self.message));
        match self.pos {
            Some(Position::LineCol { line, col }) => write!(f, "{file}:{line}:{col}: {message}"),
            Some(Position::Byte(b)) => write!(f, "{file}: byte {b}: {message}"),
            Some(Position::Event(n)) => write!(f, "{file}: event {n}: {message}"),
            None => write!(f, "{file}: {message}"),
        }
    }
}

/// Whether `c` must not be shown raw: a control character (C0, DEL, C1: terminal escapes, NUL,
/// carriage returns and newlines that would forge report lines) or a bidirectional formatting
/// character (which reorders what a terminal or a browser shows around it).
fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every character that must not be shown raw written as Rust writes it escaped,
/// `\u{1b}`: control characters (C0, DEL, C1: terminal escapes, NUL, carriage returns and
/// newlines that would forge report lines) and bidirectional formatting characters. `s` itself
/// (no copy) when it has none, as names almost always do. Everything else is kept, so two names
/// differ after it exactly when they differed before, except a name that spelled such an escape
/// out literally.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) || !s.chars().any(unprintable) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unprintable(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Passes every name of `events` (program, thread names, class keys, site locations and frames)
/// through [`printable`], in place: what the analyzer shows comes from a trace, and a trace may be
/// hostile (terminal escapes in a lock's name, a newline that forges a line of the report, a
/// bidirectional override). `lockcheck analyze` applies it to everything it reads, so every output
/// format (text, JSON, SARIF, DOT, HTML) shows the same escaped names; `lockcheck convert` does
/// not, since a conversion must keep the names as they were. An empty lock (class) or thread
/// name is shown as `""`, which no format would otherwise show (a blank in the text report).
pub fn make_printable(events: &mut [Event]) {
    fn fix(s: &mut String) {
        if let std::borrow::Cow::Owned(p) = printable(s) {
            *s = p;
        }
    }
    fn fix_name(s: &mut String) {
        if s.is_empty() {
            s.push_str("\"\"");
        } else {
            fix(s);
        }
    }
    /// One declaration: apart, so that the loop over the events is a test of each one's kind.
    #[inline(never)]
    fn fix_event(e: &mut Event) {
        match e {
            Event::Header { program, .. } => fix(program),
            Event::Thread { name: Some(n), .. } => fix_name(n),
            Event::Class { key, .. } => fix_name(key),
            Event::Site { loc, frames, .. } => {
                fix(loc);
                for fr in frames {
                    fr.function
                        .iter_mut()
                        .chain(fr.file.iter_mut())
                        .for_each(fix);
                }
            }
            _ => {}
        }
    }
    for e in events {
        if matches!(
            e,
            Event::Header { .. } | Event::Thread { .. } | Event::Class { .. } | Event::Site { .. }
        ) {
            fix_event(e);
        }
    }
}

impl std::error::Error for ReadError {}

/// How a decoder's stream stopped early.
#[derive(Debug)]
enum Fault {
    /// The input is malformed.
    Error(ReadError),
    /// The input ends in an incomplete event at `pos`; `error` is what to report when truncation
    /// is not allowed.
    Truncated { pos: Position, error: ReadError },
}

/// Message tail shared by every truncation error.
const TRUNCATED_HINT: &str = "the trace is truncated (was the traced process killed while \
     writing it?); pass --allow-truncated to analyze the complete events before this point";

/// The per-format decoder behind a [`TraceReader`].
enum Decoder {
    Json(json::JsonDecoder),
    Std(std_text::StdDecoder),
    RapidBin(rapidbin::BinDecoder),
    Lct(lct::LctDecoder),
}

/// A streaming reader of one trace file, yielding events in file order.
///
/// It is an iterator of `Result<Event, ReadError>`; after the first error it returns `None`.
pub struct TraceReader {
    name: String,
    format: InputFormat,
    decoder: Decoder,
    /// Decoded events not yet returned by the iterator (a decoder fills a batch at a time;
    /// [`TraceReader::read_batch`] has the decoder fill the caller's batch instead).
    pending: std::vec::IntoIter<Event>,
    /// How the decoder stopped, reported once `pending` is drained.
    fault: Option<Fault>,
    /// The decoder has nothing more to give.
    ended: bool,
    allow_truncated: bool,
    truncated: Option<Position>,
    done: bool,
    /// Names pass through [`printable`] as they are read (see [`TraceReader::printable`]).
    printable: bool,
    /// The text format the content shows where the name made it RAPID binary (whose bytes may
    /// be anything, so the name wins: [`InputFormat::detect`]): said in the reader's error.
    looks_like: Option<InputFormat>,
}

impl fmt::Debug for TraceReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceReader")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("allow_truncated", &self.allow_truncated)
            .field("truncated", &self.truncated)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl TraceReader {
    /// Opens `path` in `format` (or, without one, the one its content shows, else its extension:
    /// [`InputFormat::detect`]).
    ///
    /// Fails, with a message naming the file and the OS error, if the file is missing, is a
    /// directory, or cannot be read.
    pub fn open(path: &Path, format: Option<InputFormat>) -> Result<TraceReader, ReadError> {
        let name = path.display().to_string();
        let os_error =
            |what: &str, e: std::io::Error| ReadError::new(&name, None, format!("{what}: {e}"));
        let meta = fs::metadata(path).map_err(|e| os_error("cannot open trace", e))?;
        if meta.is_dir() {
            return Err(ReadError::new(
                &name,
                None,
                "is a directory, not a trace file (directories are expanded only as command-line inputs)",
            ));
        }
        let file = fs::File::open(path).map_err(|e| os_error("cannot open trace", e))?;
        // Small: the decoders read in large chunks of their own, which bypass this buffer once the
        // format sniffing below has been served from it.
        let mut input = BufReader::with_capacity(8 << 10, file);
        let mut looks_like = None;
        let format = format.unwrap_or_else(|| {
            let head = input.fill_buf().map(|b| b.to_vec()).unwrap_or_default();
            let format = InputFormat::detect(path, &head);
            if format == InputFormat::RapidBin {
                // What the content alone shows (a name of no format: JSON unless it shows
                // another); a JSON guess needs the JSON object's brace.
                looks_like = match InputFormat::detect(Path::new(""), &head) {
                    InputFormat::Std => Some(InputFormat::Std),
                    InputFormat::Json if head.trim_ascii_start().starts_with(b"{") => {
                        Some(InputFormat::Json)
                    }
                    _ => None,
                };
            }
            format
        });
        let mut reader = TraceReader::from_reader(&name, Box::new(input), format);
        reader.looks_like = looks_like;
        Ok(reader)
    }

    /// Reads from any buffered reader; `name` is used in error messages.
    pub fn from_reader(
        name: &str,
        input: Box<dyn BufRead + Send>,
        format: InputFormat,
    ) -> TraceReader {
        TraceReader::with_max_line_len(name, input, format, MAX_LINE_LEN)
    }

    /// Like [`from_reader`](TraceReader::from_reader) with a different line-length limit for the
    /// text formats (the binary format has fixed-size records and ignores it).
    pub fn with_max_line_len(
        name: &str,
        input: Box<dyn BufRead + Send>,
        format: InputFormat,
        max_line_len: usize,
    ) -> TraceReader {
        let program = Path::new(name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.to_owned());
        let decoder = match format {
            InputFormat::Json => Decoder::Json(json::JsonDecoder::new(lines::Lines::new(
                input,
                max_line_len,
            ))),
            InputFormat::Std => Decoder::Std(std_text::StdDecoder::new(
                lines::Lines::new(input, max_line_len),
                program,
            )),
            InputFormat::RapidBin => Decoder::RapidBin(rapidbin::BinDecoder::new(input, program)),
            InputFormat::Lct => Decoder::Lct(lct::LctDecoder::new(input)),
        };
        TraceReader {
            name: name.to_owned(),
            format,
            decoder,
            pending: Vec::new().into_iter(),
            fault: None,
            ended: false,
            allow_truncated: false,
            truncated: None,
            done: false,
            printable: false,
            looks_like: None,
        }
    }

    /// With `true`, every event comes out as [`make_printable`] leaves it: what `lockcheck
    /// analyze` shows of a trace. Done as the events are decoded, and for the research formats
    /// (whose names the reader makes up, at most once per thread, lock and location) only on
    /// those declarations: not a pass over every event of each batch (6.0 instructions an
    /// event under callgrind, on the planted 1M-event STD and 5M-event RAPID binary traces, of
    /// the 68 to 181 that decoding one costs there).
    pub fn printable(mut self, yes: bool) -> TraceReader {
        self.printable = yes;
        match &mut self.decoder {
            Decoder::Std(d) => d.tr.printable = yes,
            Decoder::RapidBin(d) => d.tr.printable = yes,
            Decoder::Json(_) | Decoder::Lct(_) => {}
        }
        self
    }

    /// With `true`, a truncated last event ends the stream instead of being an error.
    pub fn allow_truncated(mut self, yes: bool) -> TraceReader {
        self.allow_truncated = yes;
        self
    }

    /// Where the input was truncated, once the stream has ended at a truncated event.
    pub fn truncated(&self) -> Option<Position> {
        self.truncated
    }

    /// The name used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The format being read.
    pub fn format(&self) -> InputFormat {
        self.format
    }

    /// Moves the next events into `out` until it holds `max` or more (the events as the
    /// iterator yields them, but decoded straight into `out`, a batch at a time, rather than
    /// returned one by one). `Ok(false)` when the stream has ended, with the last events moved;
    /// the error that ends the stream comes after every event before it has been moved.
    pub fn read_batch(&mut self, out: &mut Vec<Event>, max: usize) -> Result<bool, ReadError> {
        out.extend(self.pending.by_ref());
        while out.len() < max {
            match self.step(out) {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Has the decoder append its next batch to `out`: `None` once the stream has ended,
    /// the error that ends it once (after the events before it were appended).
    fn step(&mut self, out: &mut Vec<Event>) -> Option<Result<(), ReadError>> {
        if self.done {
            return None;
        }
        if let Some(fault) = self.fault.take() {
            self.done = true;
            let hint = |mut e: ReadError| {
                if let Some(f) = self.looks_like {
                    let (what, flag) = match f {
                        InputFormat::Std => ("RAPID STD text", "std"),
                        _ => ("lockcheck JSON Lines", "json"),
                    };
                    e.message += &format!(
                        " (read as RAPID binary for its name; its content looks like {what}: try --input-format {flag})"
                    );
                }
                e
            };
            return match fault {
                Fault::Error(e) => Some(Err(hint(e))),
                Fault::Truncated { pos, error } => {
                    if self.allow_truncated {
                        self.truncated = Some(pos);
                        None
                    } else {
                        Some(Err(hint(error)))
                    }
                }
            };
        }
        if self.ended {
            self.done = true;
            return None;
        }
        let before = out.len();
        let step = match &mut self.decoder {
            Decoder::Json(d) => d.fill(&self.name, out),
            Decoder::Std(d) => d.fill(&self.name, out),
            Decoder::RapidBin(d) => d.fill(&self.name, out),
            Decoder::Lct(d) => d.fill(&self.name, out),
        };
        // The research formats' translators made their declarations printable themselves.
        if self.printable && matches!(self.decoder, Decoder::Json(_) | Decoder::Lct(_)) {
            make_printable(&mut out[before..]);
        }
        match step {
            Ok(true) => {}
            Ok(false) => self.ended = true,
            Err(fault) => self.fault = Some(fault),
        }
        Some(Ok(()))
    }
}

impl Iterator for TraceReader {
    type Item = Result<Event, ReadError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(event) = self.pending.next() {
                return Some(Ok(event));
            }
            let mut batch = Vec::with_capacity(BATCH);
            match self.step(&mut batch)? {
                Ok(()) => self.pending = batch.into_iter(),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Expands the command line's inputs: files stay, directories become their trace files
/// (`*.json`, `*.jsonl`, `*.std`, `*.data`, `*.lct`, recursively, sorted). Errors name the bad path: a
/// path that does not exist, or a directory holding no trace file.
///
/// Symbolic links to files are followed; symbolic links to directories inside a directory are
/// not (a link cycle would never end).
pub fn expand_inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ReadError> {
    let mut out = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        let meta = fs::metadata(path)
            .map_err(|e| ReadError::new(&name, None, format!("cannot read input: {e}")))?;
        if !meta.is_dir() {
            out.push(path.clone());
            continue;
        }
        let mut found = Vec::new();
        collect_traces(path, &mut found)?;
        if found.is_empty() {
            return Err(ReadError::new(
                &name,
                None,
                "directory holds no trace files (*.json, *.jsonl, *.std, *.data, *.lct)",
            ));
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn collect_traces(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ReadError> {
    let err = |p: &Path, e: std::io::Error| {
        ReadError::new(
            &p.display().to_string(),
            None,
            format!("cannot read directory: {e}"),
        )
    };
    for entry in fs::read_dir(dir).map_err(|e| err(dir, e))? {
        let entry = entry.map_err(|e| err(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| err(&path, e))?;
        if kind.is_dir() {
            collect_traces(&path, out)?;
        } else if (kind.is_file() || (kind.is_symlink() && path.is_file())) && is_trace_file(&path)
        {
            out.push(path);
        }
    }
    Ok(())
}

fn is_trace_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| TRACE_EXTENSIONS.iter().any(|t| e.eq_ignore_ascii_case(t)))
}

/// How many events a decoder queues per call, at most (a record may add a few declarations more).
const BATCH: usize = 1024;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Thread numbers below this are looked up in a table rather than a hash map.
const SMALL_THREADS: u64 = 1 << 12;
/// Numeric lock operands (RAPID binary), and STD lock names `L<n>`, below this are looked up in a
/// table.
const SMALL_LOCKS: u64 = 1 << 18;
/// Numeric locations (RAPID binary, 15 bits) are always looked up in a table, and STD location
/// tokens that are numbers below this too.
const SMALL_SITES: u64 = 1 << 15;

/// Invents the declarations that the research formats lack (see the module docs) and queues the
/// events that one input record turns into.
///
/// Every look-up on the hot path is by borrowed bytes or by number: nothing is allocated unless a
/// thread, lock or location is seen for the first time.
#[derive(Debug, Default)]
struct Translator {
    /// `T<n>` / `<n>` threads with a small `n`: index `n`, 0 = not seen.
    thread_table: Vec<ThreadNo>,
    /// `T<n>` threads with a large `n`.
    thread_nums: FastMap<u64, ThreadNo>,
    /// Threads with any other name.
    thread_names: names::Names<ThreadNo>,
    n_threads: u64,
    /// Locks by name (text formats), other than the `L<n>` of `lock_table` and the bare `<n>` of
    /// `bare_lock_table`.
    lock_names: names::Names<LockNo>,
    /// Locks named by a bare number (the research traces' `acq(172)`) below `SMALL_LOCKS`:
    /// index `n`, 0 = not seen.
    bare_lock_table: Vec<LockNo>,
    /// Locks by number (binary format): table for small numbers, 0 = not seen, map beyond.
    lock_table: Vec<LockNo>,
    lock_nums: FastMap<u64, LockNo>,
    n_locks: u64,
    /// Sites by location token (text), other than numbers (`site_table`).
    site_names: names::Names<SiteNo>,
    site_table: Vec<SiteNo>,
    n_sites: u32,
    /// Declarations pass through [`make_printable`] (see [`TraceReader::printable`]).
    printable: bool,
}

impl Translator {
    /// Queues a declaration, printable if asked.
    fn declare(&self, mut event: Event, out: &mut Vec<Event>) {
        if self.printable {
            make_printable(std::slice::from_mut(&mut event));
        }
        out.push(event);
    }

    fn header(&mut self, program: &str, out: &mut Vec<Event>) {
        self.declare(
            Event::Header {
                version: FORMAT_VERSION,
                pid: 0,
                program: program.to_owned(),
                start_unix_ms: 0,
                hold_resolution_ns: 0,
            },
            out,
        );
    }

    fn new_thread(&mut self, name: String, out: &mut Vec<Event>) -> ThreadNo {
        self.n_threads += 1;
        let t = self.n_threads;
        self.declare(
            Event::Thread {
                t,
                name: Some(name),
            },
            out,
        );
        t
    }

    /// The number of thread `T<n>`, declaring it on first sight.
    #[inline]
    fn thread_num(&mut self, n: u64, out: &mut Vec<Event>) -> ThreadNo {
        if let Some(&t) = self.thread_table.get(n as usize) {
            if t != 0 {
                return t;
            }
        }
        self.thread_num_first(n, out)
    }

    /// [`Translator::thread_num`] for a number not in the table: apart, so that the lookup
    /// inlines into the decoders without this path's stack frame (a third of its cost).
    #[cold]
    #[inline(never)]
    fn thread_num_first(&mut self, n: u64, out: &mut Vec<Event>) -> ThreadNo {
        if n < SMALL_THREADS {
            let i = n as usize;
            if self.thread_table.len() <= i {
                self.thread_table.resize(i + 1, 0);
            }
            let t = self.new_thread(format!("T{n}"), out);
            self.thread_table[i] = t;
            return t;
        }
        if let Some(&t) = self.thread_nums.get(&n) {
            return t;
        }
        let t = self.new_thread(format!("T{n}"), out);
        self.thread_nums.insert(n, t);
        t
    }

    /// The number of the thread written `token` in a text trace: `T9`, `t9` and `9` are thread 9;
    /// any other token is a thread of that name.
    #[inline]
    fn thread_token(&mut self, token: &[u8], out: &mut Vec<Event>) -> ThreadNo {
        let digits = match token {
            [b'T' | b't', rest @ ..] => rest,
            _ => token,
        };
        if let Some(n) = parse_digits(digits) {
            return self.thread_num(n, out);
        }
        if let Some(t) = self.thread_names.get(token) {
            return t;
        }
        let t = self.new_thread(String::from_utf8_lossy(token).into_owned(), out);
        self.thread_names.insert(token, t);
        t
    }

    fn new_lock(&mut self, key: String, out: &mut Vec<Event>) -> LockNo {
        self.n_locks += 1;
        let l = self.n_locks;
        // One class per lock, numbered like the lock. A trace with more than 2^32 distinct locks
        // would not fit in memory long before the numbers wrapped.
        let c = l as ClassNo;
        self.declare(
            Event::Class {
                c,
                key,
                kind: LockKind::Unknown,
            },
            out,
        );
        out.push(Event::Lock {
            l,
            c,
            permits: None,
        });
        l
    }

    /// The number of the lock named `key`, declaring its class and the lock on first sight.
    #[inline]
    fn lock_name(&mut self, key: &[u8], out: &mut Vec<Event>) -> LockNo {
        // `L<n>` as `lock_num` would name lock `n`: a table, not a hash of the name. The two
        // never name one lock twice: `lock_num` names `L<n>` exactly so, and any other
        // spelling (`L07`) is a different name, which goes to the map.
        if let [b'L', digits @ ..] = key {
            if let Some(n) = canonical_number(digits).filter(|&n| n < SMALL_LOCKS) {
                return self.lock_num(n, out);
            }
        }
        // A bare number, as `bare_lock_num` would name it (the STD fast paths read it so).
        if let Some(n) = canonical_number(key).filter(|&n| n < SMALL_LOCKS) {
            return self.bare_lock_num(n, out);
        }
        if let Some(l) = self.lock_names.get(key) {
            return l;
        }
        let l = self.new_lock(String::from_utf8_lossy(key).into_owned(), out);
        self.lock_names.insert(key, l);
        l
    }

    /// The lock named by the bare number `n` (below `SMALL_LOCKS`, written without leading
    /// zeros) in a text trace, declaring it on first sight: a table, not a hash of the name.
    #[inline]
    fn bare_lock_num(&mut self, n: u64, out: &mut Vec<Event>) -> LockNo {
        debug_assert!(n < SMALL_LOCKS);
        if let Some(&l) = self.bare_lock_table.get(n as usize) {
            if l != 0 {
                return l;
            }
        }
        self.bare_lock_num_first(n, out)
    }

    /// [`Translator::bare_lock_num`] for a number not in the table (see
    /// [`Translator::thread_num_first`]).
    #[cold]
    #[inline(never)]
    fn bare_lock_num_first(&mut self, n: u64, out: &mut Vec<Event>) -> LockNo {
        let i = n as usize;
        if self.bare_lock_table.len() <= i {
            self.bare_lock_table.resize(i + 1, 0);
        }
        let l = self.new_lock(n.to_string(), out);
        self.bare_lock_table[i] = l;
        l
    }

    /// The number of lock `L<n>` of a binary trace, declaring it on first sight.
    #[inline]
    fn lock_num(&mut self, n: u64, out: &mut Vec<Event>) -> LockNo {
        if let Some(&l) = self.lock_table.get(n as usize) {
            if l != 0 {
                return l;
            }
        }
        self.lock_num_first(n, out)
    }

    /// [`Translator::lock_num`] for a number not in the table (see
    /// [`Translator::thread_num_first`]).
    #[cold]
    #[inline(never)]
    fn lock_num_first(&mut self, n: u64, out: &mut Vec<Event>) -> LockNo {
        if n < SMALL_LOCKS {
            let i = n as usize;
            if self.lock_table.len() <= i {
                self.lock_table.resize(i + 1, 0);
            }
            let l = self.new_lock(format!("L{n}"), out);
            self.lock_table[i] = l;
            return l;
        }
        if let Some(&l) = self.lock_nums.get(&n) {
            return l;
        }
        let l = self.new_lock(format!("L{n}"), out);
        self.lock_nums.insert(n, l);
        l
    }

    fn new_site(&mut self, loc: String, out: &mut Vec<Event>) -> SiteNo {
        self.n_sites += 1;
        let s = self.n_sites;
        self.declare(
            Event::Site {
                s,
                loc,
                frames: Vec::new(),
            },
            out,
        );
        s
    }

    /// The site of location token `loc`, declaring it as `loc <loc>` on first sight.
    #[inline]
    fn site_name(&mut self, loc: &[u8], out: &mut Vec<Event>) -> SiteNo {
        // A number as `site_num` names it (`loc <n>`): a table, not a hash of the token.
        if let Some(n) = canonical_number(loc).filter(|&n| n < SMALL_SITES) {
            return self.site_num(n, out);
        }
        if let Some(s) = self.site_names.get(loc) {
            return s;
        }
        let s = self.new_site(format!("loc {}", String::from_utf8_lossy(loc)), out);
        self.site_names.insert(loc, s);
        s
    }

    /// The site of numeric location `n` (below [`SMALL_SITES`]), declared as `loc <n>`.
    #[inline]
    fn site_num(&mut self, n: u64, out: &mut Vec<Event>) -> SiteNo {
        debug_assert!(n < SMALL_SITES);
        if let Some(&s) = self.site_table.get(n as usize) {
            if s != 0 {
                return s;
            }
        }
        self.site_num_first(n, out)
    }

    /// [`Translator::site_num`] for a number not in the table (see
    /// [`Translator::thread_num_first`]).
    #[cold]
    #[inline(never)]
    fn site_num_first(&mut self, n: u64, out: &mut Vec<Event>) -> SiteNo {
        let i = n as usize;
        if self.site_table.len() <= i {
            self.site_table.resize(i + 1, 0);
        }
        let s = self.new_site(format!("loc {n}"), out);
        self.site_table[i] = s;
        s
    }
}

/// A number written as `format!("{n}")` writes it (digits, no leading zero, at most 18 of
/// them), or `None`: the tokens that name what a number names.
#[inline]
fn canonical_number(digits: &[u8]) -> Option<u64> {
    match digits {
        [] | [b'0', _, ..] => None,
        _ if digits.len() > 18 => None,
        _ => parse_digits(digits),
    }
}

/// A non-empty run of ASCII digits as a number (leading zeros allowed), or `None` (not digits, or
/// beyond `u64`).
#[inline]
fn parse_digits(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(n)
}
