//! lockcheck's own JSON Lines trace.

use super::lines::{Line, LineError, Lines};
use super::{Fault, Position, ReadError, BATCH, TRUNCATED_HINT};
use lockcheck_core::trace::{Event, FORMAT_VERSION};

pub(super) mod exact;
pub(super) mod fast;

/// Decodes one JSON event per line, checking that the first is a header of our version.
pub(super) struct JsonDecoder {
    lines: Lines,
    seen_header: bool,
}

impl JsonDecoder {
    pub(super) fn new(lines: Lines) -> JsonDecoder {
        JsonDecoder {
            lines,
            seen_header: false,
        }
    }

    /// Decodes up to a batch of lines into `out`; `Ok(false)` at the end of the input.
    pub(super) fn fill(&mut self, name: &str, out: &mut Vec<Event>) -> Result<bool, Fault> {
        let start = out.len();
        while out.len() - start < BATCH {
            // The header is always read by the full parser, so the fast paths never see it.
            if self.seen_header && self.lines.next_with(|data| exact::push(data, out)) {
                continue;
            }
            let line = match self.lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) if self.seen_header => return Ok(false),
                Ok(None) => {
                    let pos = Position::LineCol {
                        line: self.lines.lines_read() + 1,
                        col: 1,
                    };
                    return Err(error(name, pos, "empty trace (no header)"));
                }
                Err(e) => return Err(line_error(name, e)),
            };
            if self.seen_header {
                if let Some(event) = fast::event(line.bytes) {
                    out.push(event);
                    continue;
                }
            }
            if line.bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let seen_header = self.seen_header;
            let event = decode(name, &line, seen_header)?;
            if let Event::Header { .. } = event {
                if seen_header {
                    let pos = Position::LineCol {
                        line: line.no,
                        col: 1,
                    };
                    return Err(error(
                        name,
                        pos,
                        "a second header: a trace file holds the events of one process (concatenated traces must be split into separate files)",
                    ));
                }
            }
            self.seen_header = true;
            out.push(event);
        }
        Ok(true)
    }
}

fn error(name: &str, pos: Position, message: impl Into<String>) -> Fault {
    Fault::Error(ReadError::new(name, Some(pos), message))
}

/// Turns a failure of the line splitter into a fault.
pub(super) fn line_error(name: &str, e: LineError) -> Fault {
    match e {
        LineError::TooLong { line, max } => error(
            name,
            Position::LineCol { line, col: 1 },
            format!("line longer than {max} bytes (not a trace line: is this the right file and format?)"),
        ),
        LineError::Io { line, error: e } => error(name, Position::LineCol { line, col: 1 }, format!("read error: {e}")),
    }
}

/// Decodes one non-blank line; `seen_header` tells whether the header has been read.
fn decode(name: &str, line: &Line<'_>, seen_header: bool) -> Result<Event, Fault> {
    let at = |col: u64| Position::LineCol { line: line.no, col };
    let fail = |col: u64, message: String| -> Fault {
        if line.terminated {
            return error(name, at(col), message);
        }
        if !seen_header {
            return error(
                name,
                at(col),
                format!("trace truncated inside its header: {message}"),
            );
        }
        Fault::Truncated {
            pos: at(1),
            error: ReadError::new(
                name,
                Some(at(col)),
                format!("last line is incomplete ({message}): {TRUNCATED_HINT}"),
            ),
        }
    };
    let text = match std::str::from_utf8(line.bytes) {
        Ok(text) => text,
        Err(e) => return Err(fail(e.valid_up_to() as u64 + 1, "invalid UTF-8".to_owned())),
    };
    if !seen_header {
        check_header(text).map_err(|(col, message)| match message {
            // A bad version is reported as such even on an unterminated line.
            HeaderProblem::Version(m) => error(name, at(col), m),
            HeaderProblem::Other(m) => fail(col, m),
        })?;
    }
    serde_json::from_str::<Event>(text).map_err(|e| {
        let col = match e.column() {
            // serde reads a tagged enum through a buffer and loses the position of a bad field.
            0 => locate_bad_field(text).unwrap_or(1),
            col => col as u64,
        };
        fail(col, serde_message(&e))
    })
}

/// The column of the value of the field that makes `text` (a JSON object that is not a valid
/// event) fail, found by removing one field at a time: a bad required field turns into "missing
/// field", a bad optional one into success.
fn locate_bad_field(text: &str) -> Option<u64> {
    let serde_json::Value::Object(map) = serde_json::from_str(text).ok()? else {
        return None;
    };
    let original = serde_json::from_value::<Event>(serde_json::Value::Object(map.clone()))
        .err()?
        .to_string();
    if original.starts_with("missing field") {
        // Nothing to point at: the object as a whole lacks it.
        return None;
    }
    for key in map.keys().filter(|k| k.as_str() != "e") {
        let mut without = map.clone();
        without.remove(key);
        let culprit = match serde_json::from_value::<Event>(serde_json::Value::Object(without)) {
            Ok(_) => true,
            Err(e) => {
                let e = e.to_string();
                e != original && e.starts_with(&format!("missing field `{key}`"))
            }
        };
        if culprit {
            return value_column(text, key);
        }
    }
    None
}

/// The 1-based column where the value of top-level field `key` starts in `text`.
fn value_column(text: &str, key: &str) -> Option<u64> {
    let quoted = serde_json::to_string(key).ok()?;
    let mut from = 0;
    while let Some(i) = text[from..].find(&quoted) {
        let start = from + i;
        let after = text[start + quoted.len()..].trim_start();
        if let Some(value) = after.strip_prefix(':') {
            let value = value.trim_start();
            return Some((text.len() - value.len()) as u64 + 1);
        }
        from = start + 1;
    }
    None
}

enum HeaderProblem {
    Version(String),
    Other(String),
}

/// Checks that the first line is a header of [`FORMAT_VERSION`] before decoding it, so that a trace
/// of another version gets a version error rather than a complaint about some changed field.
fn check_header(text: &str) -> Result<(), (u64, HeaderProblem)> {
    #[derive(serde::Deserialize)]
    struct Probe {
        e: Option<serde_json::Value>,
        version: Option<serde_json::Value>,
    }
    let probe: Probe = match serde_json::from_str(text) {
        Ok(p) => p,
        // Not even an object: let the full decode report it with its column.
        Err(_) => return Ok(()),
    };
    match probe.e.as_ref().and_then(|e| e.as_str()) {
        Some("header") => {}
        Some(other) => {
            return Err((
                1,
                HeaderProblem::Other(format!(
                    "the first event must be a `header`, found `{other}`"
                )),
            ))
        }
        None => return Ok(()),
    }
    match probe.version.as_ref().and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(FORMAT_VERSION) => Ok(()),
        Some(v) => Err((
            1,
            HeaderProblem::Version(format!(
                "unsupported trace format version {v} (this lockcheck reads {FORMAT_VERSION})"
            )),
        )),
        None => Ok(()),
    }
}

/// serde_json's message without its ` at line 1 column N` suffix (the position is reported
/// separately, relative to the file).
fn serde_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}
