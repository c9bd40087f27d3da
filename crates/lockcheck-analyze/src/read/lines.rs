//! Bounded line splitting for the text formats, borrowing each line from the read buffer.

use super::chunks::Chunks;
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

/// Splits a reader into lines borrowed from the read buffer, which grows only to hold a line of
/// up to `max` bytes: a file with no newline is an error once the line passes `max`, not an
/// allocation of the whole file.
pub(super) struct Lines {
    input: Chunks,
    line_no: u64,
    max: usize,
    /// Bytes of the line last returned (with its newline), consumed at the next call.
    returned: usize,
}

impl Lines {
    pub(super) fn new(input: Box<dyn BufRead + Send>, max: usize) -> Lines {
        Lines {
            input: Chunks::new(input),
            line_no: 0,
            max,
            returned: 0,
        }
    }

    /// How many lines have been returned so far.
    pub(super) fn lines_read(&self) -> u64 {
        self.line_no
    }

    /// Hands the next line to `parse` straight in the unread input, without looking for its end
    /// first: `parse` gets the buffered bytes from the start of the line (at most one more than
    /// the longest line allowed) and returns the index of the newline that ends the line it took.
    /// Only for parsers that accept no newline in a line, treat one `\r` before it as
    /// [`next_line`](Lines::next_line) does (drop it, or decline the line), and not for the first
    /// line (which may start with a byte-order mark): then the line is exactly the one `next_line`
    /// would return. `false` (nothing consumed)
    /// when `parse` declines, or when the buffer holds no whole line: then `next_line` takes it.
    #[inline(always)]
    pub(super) fn next_with(&mut self, parse: impl FnOnce(&[u8]) -> Option<usize>) -> bool {
        self.input.consume(std::mem::take(&mut self.returned));
        if self.line_no == 0 {
            return false;
        }
        let data = self.input.data();
        let data = &data[..data.len().min(self.max.saturating_add(1))];
        let Some(len) = parse(data) else {
            return false;
        };
        debug_assert_eq!(data.get(len), Some(&b'\n'));
        self.input.consume(len + 1);
        self.line_no += 1;
        true
    }

    /// [`next_with`](Lines::next_with) for a run of lines: `parse` gets the unread input and
    /// returns how many bytes and lines it took from its start, whole lines each ended by its
    /// newline (the bytes end with the last one's). The lines taken; 0 (nothing consumed) when
    /// `parse` took none.
    #[inline(always)]
    pub(super) fn next_run(&mut self, parse: impl FnOnce(&[u8]) -> (usize, u64)) -> u64 {
        self.input.consume(std::mem::take(&mut self.returned));
        if self.line_no == 0 {
            return 0;
        }
        let data = self.input.data();
        let data = &data[..data.len().min(self.max.saturating_add(1))];
        let (len, lines) = parse(data);
        debug_assert!(lines == 0 || data.get(len.wrapping_sub(1)) == Some(&b'\n'));
        self.input.consume(len);
        self.line_no += lines;
        lines
    }

    /// The next line, or `None` at the end of the input.
    #[inline]
    pub(super) fn next_line(&mut self) -> Result<Option<Line<'_>>, LineError> {
        // The previous line stays borrowed from the buffer until this call: consume it now.
        self.input.consume(std::mem::take(&mut self.returned));
        let line = self.line_no + 1;
        let (len, terminated) = loop {
            let data = self.input.data();
            match memchr::memchr(b'\n', data) {
                Some(i) if i <= self.max => break (i, true),
                Some(_) => {
                    return Err(LineError::TooLong {
                        line,
                        max: self.max,
                    })
                }
                None if data.len() > self.max => {
                    return Err(LineError::TooLong {
                        line,
                        max: self.max,
                    })
                }
                None if self.input.eof() => {
                    if data.is_empty() {
                        return Ok(None);
                    }
                    break (data.len(), false);
                }
                None => {
                    if let Err(error) = self.input.refill(self.max) {
                        return Err(LineError::Io { line, error });
                    }
                }
            }
        };
        self.line_no = line;
        self.returned = len + usize::from(terminated);
        let mut bytes = &self.input.data()[..len];
        // Editors on some systems start a UTF-8 file with a byte-order mark; it is not content.
        if line == 1 && bytes.starts_with(b"\xEF\xBB\xBF") {
            bytes = &bytes[3..];
        }
        if let [rest @ .., b'\r'] = bytes {
            bytes = rest;
        }
        Ok(Some(Line {
            bytes,
            no: line,
            terminated,
        }))
    }
}
