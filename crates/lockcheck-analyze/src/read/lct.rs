//! lockcheck's binary format (`.lct`, see [`lockcheck_core::lct`]): self-delimiting records after
//! a 4-byte magic, decoded a batch at a time straight out of the read buffer.
//!
//! The records of lock operations (numbers only) are decoded here by [`decode_numeric`], which
//! allocates nothing; any other record, and any record that [`decode_numeric`] finds anything
//! unusual in, goes to [`lct::decode`], the format's reference decoder, which decides whether it is
//! valid and says why not. The reference decoder allocates nothing on these records either, but
//! its `Result`s carry an error `String` on every read: the `Option` cursor here is measured at
//! 41M events/s against 29M through [`lct::decode`] alone on the planted trace (both in release,
//! one thread). Mending that in lockcheck-core (an error without a `String` until it is shown)
//! would let this copy go; `lct_fast_path_agrees_with_the_reference_decoder` holds the two equal.

use super::chunks::Chunks;
use super::{Fault, Position, ReadError, BATCH, TRUNCATED_HINT};
use lockcheck_core::lct::{self, DecodeError};
use lockcheck_core::trace::{Event, How, Mode, Short};
use std::io::BufRead;

/// Decodes `.lct` records into core events.
pub(super) struct LctDecoder {
    input: Chunks,
    started: bool,
    /// Versions 3 to 5 (the recorder's raw records): what their own records need kept between
    /// records.
    raw: Option<lct::raw::RawDecoder>,
}

impl LctDecoder {
    pub(super) fn new(input: Box<dyn BufRead + Send>) -> LctDecoder {
        LctDecoder {
            input: Chunks::new(input),
            started: false,
            raw: None,
        }
    }

    /// Reads more input; `Ok(false)` once it has ended.
    fn refill(&mut self, name: &str) -> Result<bool, Fault> {
        let at = self.input.offset() + self.input.data().len() as u64;
        let n = self
            .input
            .refill(lct::MAX_RECORD_LEN as usize + 16)
            .map_err(|e| {
                Fault::Error(ReadError::new(
                    name,
                    Some(Position::Byte(at)),
                    format!("read error: {e}"),
                ))
            })?;
        Ok(n > 0)
    }

    /// Decodes up to a batch of records into `out`; `Ok(false)` at the end of the input.
    pub(super) fn fill(&mut self, name: &str, out: &mut Vec<Event>) -> Result<bool, Fault> {
        if !self.started {
            loop {
                match lct::check_magic(self.input.data()) {
                    Ok(version) => {
                        if version >= 3 {
                            self.raw = Some(lct::raw::RawDecoder::for_version(version));
                        }
                        break;
                    }
                    Err(DecodeError::Truncated) if !self.input.eof() => {
                        self.refill(name)?;
                    }
                    Err(DecodeError::Truncated) => {
                        let at = Some(Position::Byte(self.input.offset()));
                        // A cut magic leaves nothing to analyze, not even the format: refused
                        // with or without --allow-truncated, as JSON Lines refuses a cut header
                        // (read as a truncation, it gave an empty report and exit code 0).
                        let message = match self.input.data().len() {
                            0 => "empty trace (no .lct magic)".to_owned(),
                            n => format!(
                                "trace truncated inside its .lct magic ({n} of {} bytes)",
                                lct::MAGIC.len()
                            ),
                        };
                        return Err(Fault::Error(ReadError::new(name, at, message)));
                    }
                    Err(DecodeError::Invalid(m)) => {
                        return Err(Fault::Error(ReadError::new(
                            name,
                            Some(Position::Byte(self.input.offset())),
                            m,
                        )))
                    }
                }
            }
            self.input.consume(lct::MAGIC.len());
            self.started = true;
        }
        let start = out.len();
        loop {
            let data = self.input.data();
            let mut pos = 0;
            let mut stop = None;
            while out.len() - start < BATCH {
                let rest = &data[pos..];
                if let Some((event, n)) = decode_numeric(rest) {
                    out.push(event);
                    pos += n;
                    continue;
                }
                if let Some(raw) = &mut self.raw {
                    match raw.decode(rest, out) {
                        Ok(Some(n)) => {
                            pos += n;
                            continue;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            stop = Some(Some(e));
                            break;
                        }
                    }
                }
                match lct::decode(rest) {
                    Ok(Some((event, n))) => {
                        out.push(event);
                        pos += n;
                    }
                    Ok(None) => {
                        stop = Some(None);
                        break;
                    }
                    Err(e) => {
                        stop = Some(Some(e));
                        break;
                    }
                }
            }
            self.input.consume(pos);
            let at = Position::Byte(self.input.offset());
            match stop {
                // A full batch.
                None => return Ok(true),
                // Buffer used up: more input, or the end.
                Some(None) | Some(Some(DecodeError::Truncated)) if !self.input.eof() => {
                    if out.len() > start {
                        return Ok(true);
                    }
                    self.refill(name)?;
                }
                Some(None) => return Ok(false),
                Some(Some(DecodeError::Truncated)) => {
                    // A block cut by a crash: its complete raw records are events.
                    if let Some(raw) = &mut self.raw {
                        let data = self.input.data();
                        match raw.salvage(data, out) {
                            Ok(n) => self.input.consume(n),
                            Err(DecodeError::Invalid(m)) => {
                                return Err(Fault::Error(ReadError::new(name, Some(at), m)))
                            }
                            Err(DecodeError::Truncated) => {}
                        }
                    }
                    let at = Position::Byte(self.input.offset());
                    return Err(Fault::Truncated {
                        pos: at,
                        error: ReadError::new(
                            name,
                            Some(at),
                            format!("the last record is incomplete: {TRUNCATED_HINT}"),
                        ),
                    });
                }
                Some(Some(DecodeError::Invalid(m))) => {
                    return Err(Fault::Error(ReadError::new(name, Some(at), m)))
                }
            }
        }
    }
}

/// A cursor for [`decode_numeric`]: every read returns `None` on anything unusual.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    #[inline]
    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    #[inline]
    fn varint(&mut self) -> Option<u64> {
        let first = self.byte()?;
        if first < 0x80 {
            return Some(u64::from(first));
        }
        let mut v = u64::from(first & 0x7f);
        let mut shift = 7;
        loop {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return None;
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
    }

    #[inline]
    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.varint()?).ok()
    }

    #[inline]
    fn opt_u32(&mut self) -> Option<Option<u32>> {
        match self.byte()? {
            0 => Some(None),
            1 => Some(Some(self.u32()?)),
            _ => None,
        }
    }

    #[inline]
    fn opt_varint(&mut self) -> Option<Option<u64>> {
        match self.byte()? {
            0 => Some(None),
            1 => Some(Some(self.varint()?)),
            _ => None,
        }
    }

    #[inline]
    fn mode(&mut self) -> Option<Mode> {
        Some(match self.byte()? {
            0 => Mode::Exclusive,
            1 => Mode::Shared,
            2 => Mode::SharedRecursive,
            3 => Mode::Upgradable,
            4 => Mode::Permit,
            _ => return None,
        })
    }

    #[inline]
    fn how(&mut self) -> Option<How> {
        Some(match self.byte()? {
            0 => How::Blocking,
            1 => How::Try,
            2 => How::Timed,
            _ => return None,
        })
    }
}

/// Decodes a well-formed record of a lock operation (`lock`, `request`, `acquire`, `fail`,
/// `release`, `convert`, `cond_wait`, `fork`, `join`, `drop`) at the start of `buf`: the event and
/// the bytes it took. `None` for any other record and for anything unusual (a cut, a bad field),
/// which [`lct::decode`] then decodes or rejects: both give the same event for every record this
/// accepts (tested in `read/tests.rs`).
#[inline]
fn decode_numeric(buf: &[u8]) -> Option<(Event, usize)> {
    let mut c = Cursor { buf, pos: 0 };
    let len = c.varint()?;
    if len == 0 || len > 64 {
        return None;
    }
    let end = c.pos + len as usize;
    if buf.len() < end {
        return None;
    }
    let mut b = Cursor {
        buf: &buf[c.pos..end],
        pos: 0,
    };
    let event = match b.byte()? {
        4 => Event::Lock {
            l: b.varint()?,
            c: b.u32()?,
            permits: b.opt_varint()?,
        },
        5 => Event::Request {
            t: b.varint()?,
            l: b.varint()?,
            m: b.mode()?,
            s: b.opt_u32()?,
            n: if b.pos == b.buf.len() {
                1
            } else {
                u32::try_from(b.varint()?).ok()?
            },
            // A byte after the permits when the semaphore was short (`lct::encode_request`).
            short: if b.pos == b.buf.len() {
                None
            } else {
                Some(match b.byte()? {
                    0 => Short::Held,
                    1 => Short::Alone,
                    _ => return None,
                })
            },
        },
        tag @ (6 | 7) => {
            let (t, l, m, how) = (b.varint()?, b.varint()?, b.mode()?, b.how()?);
            let (s, wait_ns) = (b.opt_u32()?, b.varint()?);
            if tag == 6 {
                Event::Acquire {
                    t,
                    l,
                    m,
                    how,
                    s,
                    wait_ns,
                }
            } else {
                Event::Fail {
                    t,
                    l,
                    m,
                    how,
                    s,
                    wait_ns,
                    n: if b.pos == b.buf.len() {
                        1
                    } else {
                        u32::try_from(b.varint()?).ok()?
                    },
                }
            }
        }
        8 => Event::Release {
            t: b.varint()?,
            l: b.varint()?,
            hold_ns: b.varint()?,
        },
        9 => Event::Convert {
            t: b.varint()?,
            l: b.varint()?,
            m: b.mode()?,
        },
        10 => Event::CondWait {
            t: b.varint()?,
            cv: b.varint()?,
            l: b.varint()?,
            // A timed wait's flag after them: the full decoder's (`pos` short of the end).
            timed: false,
        },
        11 => Event::Fork {
            t: b.varint()?,
            child: b.varint()?,
        },
        12 => Event::Join {
            t: b.varint()?,
            child: b.varint()?,
            // A scope's flag after them: the full decoder's (`pos` short of the end).
            scope: false,
        },
        13 => Event::Drop { l: b.varint()? },
        16 => Event::Forget {
            l: b.varint()?,
            n: b.varint()?,
        },
        21 => Event::Written { l: b.varint()? },
        22 => Event::ClassWritten { c: b.u32()? },
        _ => return None,
    };
    (b.pos == b.buf.len()).then_some((event, end))
}

#[cfg(test)]
pub(super) fn decode_numeric_for_tests(buf: &[u8]) -> Option<(Event, usize)> {
    decode_numeric(buf)
}
