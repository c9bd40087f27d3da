//! RAPID's binary format.
//!
//! A big-endian header (`i16` threads, `i32` locks, `i32` variables, `i64` events), then one
//! big-endian `i64` per event: thread in bits 0-9, operation in bits 10-13, operand in bits 14-47,
//! location in bits 48-62.

use super::{Fault, Position, ReadError, ThreadKey, Translator, TRUNCATED_HINT};
use lockcheck_core::trace::{Event, How, Mode};
use std::io::{self, BufRead, Read};

const HEADER_LEN: u64 = 18;
const RECORD_LEN: u64 = 8;

const OP_NAMES: [&str; 10] = [
    "acq", "rel", "r", "w", "fork", "join", "begin", "end", "req", "branch",
];

/// The counts declared by the header.
#[derive(Debug, Clone, Copy)]
struct Header {
    threads: u64,
    locks: u64,
    events: u64,
}

/// Decodes RAPID binary records into core events.
pub(super) struct BinDecoder {
    input: Box<dyn BufRead + Send>,
    program: String,
    header: Option<Header>,
    /// Byte offset of the next unread byte.
    offset: u64,
    /// Records read so far.
    pub(super) records: u64,
    tr: Translator,
}

/// One decoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    thread: u64,
    op: u64,
    operand: u64,
    location: u64,
}

impl Record {
    fn decode(word: u64) -> Record {
        Record {
            thread: word & 0x3ff,
            op: (word >> 10) & 0xf,
            operand: (word >> 14) & ((1 << 34) - 1),
            location: (word >> 48) & 0x7fff,
        }
    }
}

impl BinDecoder {
    pub(super) fn new(input: Box<dyn BufRead + Send>, program: String) -> BinDecoder {
        BinDecoder {
            input,
            program,
            header: None,
            offset: 0,
            records: 0,
            tr: Translator::default(),
        }
    }

    pub(super) fn next(&mut self, name: &str) -> Result<Option<Event>, Fault> {
        loop {
            if let Some(event) = self.tr.pop() {
                return Ok(Some(event));
            }
            let header = match self.header {
                Some(h) => h,
                None => {
                    let h = self.read_header(name)?;
                    self.header = Some(h);
                    self.tr.header(&self.program);
                    continue;
                }
            };
            let at = self.offset;
            let mut word = [0u8; RECORD_LEN as usize];
            let got = self.fill(&mut word).map_err(|e| io_error(name, at, e))?;
            if self.records == header.events {
                if got == 0 {
                    return Ok(None);
                }
                let extra = got as u64 + self.skip_rest().map_err(|e| io_error(name, at, e))?;
                return Err(error(
                    name,
                    at,
                    format!(
                        "{extra} bytes after the {} events that the header declares",
                        header.events
                    ),
                ));
            }
            if got < word.len() {
                let what = if got == 0 {
                    format!(
                        "the header declares {} events but the file holds {}",
                        header.events, self.records
                    )
                } else {
                    format!(
                        "record {} is partial ({got} of {RECORD_LEN} bytes; the header declares {} events)",
                        self.records + 1,
                        header.events
                    )
                };
                return Err(Fault::Truncated {
                    pos: Position::Byte(at),
                    error: ReadError::new(
                        name,
                        Some(Position::Byte(at)),
                        format!("{what}: {TRUNCATED_HINT}"),
                    ),
                });
            }
            self.records += 1;
            let record = Record::decode(u64::from_be_bytes(word));
            translate(&mut self.tr, &header, record).map_err(|m| error(name, at, m))?;
        }
    }

    fn read_header(&mut self, name: &str) -> Result<Header, Fault> {
        let mut raw = [0u8; HEADER_LEN as usize];
        let got = self.fill(&mut raw).map_err(|e| io_error(name, 0, e))?;
        if got == 0 {
            return Err(error(name, 0, "empty trace (no header)"));
        }
        if got < raw.len() {
            return Err(error(
                name,
                0,
                format!(
                    "binary header too short: {got} bytes (a RAPID binary header is {HEADER_LEN})"
                ),
            ));
        }
        let threads = i16::from_be_bytes([raw[0], raw[1]]);
        let locks = i32::from_be_bytes([raw[2], raw[3], raw[4], raw[5]]);
        let variables = i32::from_be_bytes([raw[6], raw[7], raw[8], raw[9]]);
        let events = i64::from_be_bytes(raw[10..18].try_into().expect("8 bytes"));
        let negative = |what: &str, offset: u64, value: i64| {
            error(name, offset, format!("the header declares a negative number of {what} ({value}): not a RAPID binary trace?"))
        };
        if threads < 0 {
            return Err(negative("threads", 0, threads.into()));
        }
        if locks < 0 {
            return Err(negative("locks", 2, locks.into()));
        }
        if variables < 0 {
            return Err(negative("variables", 6, variables.into()));
        }
        if events < 0 {
            return Err(negative("events", 10, events));
        }
        Ok(Header {
            threads: threads as u64,
            locks: locks as u64,
            events: events as u64,
        })
    }

    /// Reads until `buf` is full or the input ends; returns how many bytes were read.
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.input.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.offset += got as u64;
        Ok(got)
    }

    /// Counts the remaining bytes without keeping them.
    fn skip_rest(&mut self) -> io::Result<u64> {
        io::copy(&mut self.input, &mut io::sink())
    }
}

fn error(name: &str, at: u64, message: impl Into<String>) -> Fault {
    Fault::Error(ReadError::new(name, Some(Position::Byte(at)), message))
}

fn io_error(name: &str, at: u64, e: io::Error) -> Fault {
    error(name, at, format!("read error: {e}"))
}

/// Queues the events of one record, checking its numbers against the header.
fn translate(tr: &mut Translator, header: &Header, r: Record) -> Result<(), String> {
    let Some(&op_name) = OP_NAMES.get(r.op as usize) else {
        return Err(format!(
            "unknown operation code {} (RAPID binary uses 0-9)",
            r.op
        ));
    };
    if r.thread >= header.threads {
        return Err(format!(
            "thread {} out of range: the header declares {} threads",
            r.thread, header.threads
        ));
    }
    let t = tr.thread(ThreadKey::Num(r.thread));
    let lock = |tr: &mut Translator| {
        if r.operand >= header.locks {
            return Err(format!(
                "`{op_name}` of lock {} out of range: the header declares {} locks",
                r.operand, header.locks
            ));
        }
        Ok(tr.lock(&format!("L{}", r.operand)))
    };
    let child = |tr: &mut Translator| {
        if r.operand >= header.threads {
            return Err(format!(
                "`{op_name}` of thread {} out of range: the header declares {} threads",
                r.operand, header.threads
            ));
        }
        Ok(tr.thread(ThreadKey::Num(r.operand)))
    };
    match r.op {
        0 | 8 => {
            let l = lock(tr)?;
            let s = Some(tr.site(&r.location.to_string()));
            tr.push(if r.op == 0 {
                Event::Acquire {
                    t,
                    l,
                    m: Mode::Exclusive,
                    how: How::Blocking,
                    s,
                    wait_ns: 0,
                }
            } else {
                Event::Request {
                    t,
                    l,
                    m: Mode::Exclusive,
                    s,
                }
            });
        }
        1 => {
            let l = lock(tr)?;
            tr.push(Event::Release { t, l, hold_ns: 0 });
        }
        4 => {
            let child = child(tr)?;
            tr.push(Event::Fork { t, child });
        }
        5 => {
            let child = child(tr)?;
            tr.push(Event::Join { t, child });
        }
        // r, w, begin, end, branch: not lock events.
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_fields_come_from_their_bits() {
        let word = 3 | (8 << 10) | (1234 << 14) | (77 << 48);
        assert_eq!(
            Record::decode(word),
            Record {
                thread: 3,
                op: 8,
                operand: 1234,
                location: 77
            }
        );
        let all = u64::MAX;
        assert_eq!(
            Record::decode(all),
            Record {
                thread: 1023,
                op: 15,
                operand: (1 << 34) - 1,
                location: 0x7fff
            }
        );
    }
}
