//! lockcheck's binary format (`.lct`, see [`lockcheck_core::lct`]): self-delimiting records after
//! a 4-byte magic, decoded from a buffer refilled in large chunks.

use super::{Fault, Position, ReadError, TRUNCATED_HINT};
use lockcheck_core::lct::{self, DecodeError};
use lockcheck_core::trace::Event;
use std::io::BufRead;

/// Decodes `.lct` records into core events.
pub(super) struct LctDecoder {
    input: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    /// Index in `buf` of the next record.
    pos: usize,
    /// File offset of `buf[0]`.
    base: u64,
    started: bool,
    eof: bool,
}

impl LctDecoder {
    pub(super) fn new(input: Box<dyn BufRead + Send>) -> LctDecoder {
        LctDecoder {
            input,
            buf: Vec::new(),
            pos: 0,
            base: 0,
            started: false,
            eof: false,
        }
    }

    /// Appends the next chunk of input to `buf`, first dropping what was decoded.
    fn refill(&mut self, name: &str) -> Result<(), Fault> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        let chunk = self.input.fill_buf().map_err(|e| {
            Fault::Error(ReadError::new(
                name,
                Some(Position::Byte(self.base + self.buf.len() as u64)),
                format!("read error: {e}"),
            ))
        })?;
        if chunk.is_empty() {
            self.eof = true;
        } else {
            let n = chunk.len();
            self.buf.extend_from_slice(chunk);
            self.input.consume(n);
        }
        Ok(())
    }

    pub(super) fn next(&mut self, name: &str) -> Result<Option<Event>, Fault> {
        loop {
            let at = Position::Byte(self.base + self.pos as u64);
            let step = if self.started {
                lct::decode(&self.buf[self.pos..]).map(|r| r.map(|(e, n)| (Some(e), n)))
            } else {
                lct::check_magic(&self.buf).map(|()| Some((None, lct::MAGIC.len())))
            };
            match step {
                Ok(Some((event, n))) => {
                    self.pos += n;
                    self.started = true;
                    if let Some(e) = event {
                        return Ok(Some(e));
                    }
                }
                Ok(None) if self.eof => return Ok(None),
                Err(DecodeError::Truncated) if self.eof => {
                    if !self.started && self.buf.is_empty() {
                        return Err(Fault::Error(ReadError::new(
                            name,
                            Some(at),
                            "empty trace (no .lct magic)",
                        )));
                    }
                    return Err(Fault::Truncated {
                        pos: at,
                        error: ReadError::new(
                            name,
                            Some(at),
                            format!("the last record is incomplete: {TRUNCATED_HINT}"),
                        ),
                    });
                }
                Ok(None) | Err(DecodeError::Truncated) => self.refill(name)?,
                Err(DecodeError::Invalid(m)) => {
                    return Err(Fault::Error(ReadError::new(name, Some(at), m)))
                }
            }
        }
    }
}
