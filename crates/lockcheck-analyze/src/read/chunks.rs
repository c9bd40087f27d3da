//! Large buffered reads shared by every decoder.
//!
//! The decoders parse straight out of one buffer filled by large `read` calls, borrowing lines and
//! records from it instead of copying each into a buffer of its own: per event the cost is the
//! parse, not the plumbing. Unconsumed bytes (a record or line cut by the end of a read) move to
//! the front before the next read; the buffer grows only while a single record does not fit, and
//! shrinks back once such a record has been consumed.

use std::io::{self, BufRead};

/// The size of one read (and of the buffer, unless a record needs more).
pub(super) const CHUNK: usize = 256 << 10;

/// A buffer that grew for one long record is given back once the data it holds would fit the
/// default size again, so one large event does not pin its memory for the rest of the trace.
const KEEP_CAPACITY: usize = 4 << 20;

pub(super) struct Chunks {
    input: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    /// The unconsumed data is `buf[start..end]`.
    start: usize,
    end: usize,
    /// File offset of `buf[0]`.
    base: u64,
    eof: bool,
}

impl Chunks {
    pub(super) fn new(input: Box<dyn BufRead + Send>) -> Chunks {
        Chunks {
            input,
            buf: Vec::new(),
            start: 0,
            end: 0,
            base: 0,
            eof: false,
        }
    }

    /// The bytes read and not yet consumed.
    #[inline]
    pub(super) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks the first `n` bytes of [`data`](Chunks::data) as consumed.
    #[inline]
    pub(super) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        self.start += n;
    }

    /// The file offset of the first byte of [`data`](Chunks::data).
    #[inline]
    pub(super) fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    /// Whether the input has ended (what [`data`](Chunks::data) holds is all there is).
    #[inline]
    pub(super) fn eof(&self) -> bool {
        self.eof
    }

    /// Reads more input after the unconsumed data, growing the buffer when that data fills it but
    /// never beyond `limit + 1` bytes of capacity. Returns how many bytes were added:
    /// 0 means the input has ended.
    pub(super) fn refill(&mut self, limit: usize) -> io::Result<usize> {
        if self.eof {
            return Ok(0);
        }
        let pending = self.end - self.start;
        if self.buf.len() > KEEP_CAPACITY && pending < CHUNK {
            let mut fresh = vec![0; CHUNK * 2];
            fresh[..pending].copy_from_slice(&self.buf[self.start..self.end]);
            self.buf = fresh;
            self.base += self.start as u64;
            self.start = 0;
            self.end = pending;
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.start = 0;
            self.end = pending;
        }
        if self.buf.is_empty() {
            self.buf = vec![0; CHUNK];
        } else if self.end == self.buf.len() {
            // One record fills the whole buffer: double it, up to one byte past the caller's
            // limit (enough to tell that a record is too long).
            let grown = (self.buf.len() * 2)
                .min(limit.saturating_add(1))
                .max(self.buf.len() + 1);
            self.buf.resize(grown, 0);
        }
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(0);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}
