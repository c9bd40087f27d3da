//! Bounded line splitting for the text formats.

use std::io::{self, BufRead};

/// One line, without its `\n` (and without a `\r` before it).
#[derive(Debug)]
pub(super) struct Line<'a> {
    /// The line's bytes.
    pub(super) bytes: &'a [u8],
    /// 1-based line number.
    pub(super) no: u64,
    /// Whether a newline ended it (the last line of a file may lack one).
    pub(super) terminated: bool,
}

/// Why no line could be read.
#[derive(Debug)]
pub(super) enum LineError {
    /// Line `line` is longer than the limit.
    TooLong { line: u64, max: usize },
    /// The input failed while reading line `line`.
    Io { line: u64, error: io::Error },
}

/// Splits a reader into lines, holding at most one line of at most `max` bytes in memory.
///
/// `BufRead::read_line` would grow its buffer without bound on a file with no newline; this reads
/// chunk by chunk from `fill_buf` and gives up as soon as the line passes `max`.
pub(super) struct Lines {
    input: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    line_no: u64,
    max: usize,
}

/// A buffer that grew for one long line is given back afterwards, so one large event does not pin
/// its memory for the rest of the trace.
const KEEP_CAPACITY: usize = 1 << 20;

impl Lines {
    pub(super) fn new(input: Box<dyn BufRead + Send>, max: usize) -> Lines {
        Lines {
            input,
            buf: Vec::new(),
            line_no: 0,
            max,
        }
    }

    /// How many lines have been returned so far.
    pub(super) fn lines_read(&self) -> u64 {
        self.line_no
    }

    /// The next line, or `None` at the end of the input.
    pub(super) fn next_line(&mut self) -> Result<Option<Line<'_>>, LineError> {
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        }
        self.buf.clear();
        let line = self.line_no + 1;
        let terminated = loop {
            let chunk = match self.input.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(LineError::Io { line, error }),
            };
            if chunk.is_empty() {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                break false;
            }
            let (take, found) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            if self.buf.len() + take > self.max {
                return Err(LineError::TooLong {
                    line,
                    max: self.max,
                });
            }
            grow(&mut self.buf, take, self.max);
            self.buf.extend_from_slice(&chunk[..take]);
            self.input.consume(if found { take + 1 } else { take });
            if found {
                break true;
            }
        };
        self.line_no = line;
        // Editors on some systems start a UTF-8 file with a byte-order mark; it is not content.
        if line == 1 && self.buf.starts_with(b"\xEF\xBB\xBF") {
            self.buf.drain(..3);
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some(Line {
            bytes: &self.buf,
            no: line,
            terminated,
        }))
    }
}

/// Reserves room for `extra` more bytes without letting the capacity pass `max` (plain doubling
/// would reserve up to twice the limit).
fn grow(buf: &mut Vec<u8>, extra: usize, max: usize) {
    let needed = buf.len() + extra;
    if needed > buf.capacity() {
        let target = (buf.capacity() * 2).max(needed).min(max.max(needed));
        buf.reserve_exact(target - buf.len());
    }
}
