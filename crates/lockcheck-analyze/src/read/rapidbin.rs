//! RAPID's binary format.
//!
//! A big-endian header (`i16` threads, `i32` locks, `i32` variables, `i64` events), then one
//! big-endian `i64` per event: thread in bits 0-9, operation in bits 10-13, operand in bits 14-47,
//! location in bits 48-62.

use super::chunks::Chunks;
use super::{Fault, Position, ReadError, Translator, BATCH, TRUNCATED_HINT};
use lockcheck_core::trace::{Event, How, Mode};
use std::io::{self, BufRead};

const HEADER_LEN: u64 = 18;
const RECORD_LEN: u64 = 8;
/// Bytes after the declared events that an error counts before it says "more than" this many.
const EXTRA_COUNTED: u64 = 1 << 20;

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

/// Decodes RAPID binary records into core events, a batch of records at a time straight out of
/// the read buffer.
pub(super) struct BinDecoder {
    input: Chunks,
    program: String,
    header: Option<Header>,
    /// Records read so far.
    pub(super) records: u64,
    pub(super) tr: Translator,
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
    /// The word that [`Record::decode`] reads as this record (fields in range).
    #[cfg(test)]
    fn encode(self) -> u64 {
        self.thread | self.op << 10 | self.operand << 14 | self.location << 48
    }

    #[inline(always)]
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
            input: Chunks::new(input),
            program,
            header: None,
            records: 0,
            tr: Translator::default(),
        }
    }

    /// Fills the buffer until it holds `n` bytes or the input ends; the bytes it holds.
    fn want(&mut self, name: &str, n: usize) -> Result<usize, Fault> {
        while self.input.data().len() < n {
            let at = self.input.offset() + self.input.data().len() as u64;
            if self.input.refill(n).map_err(|e| io_error(name, at, e))? == 0 {
                break;
            }
        }
        Ok(self.input.data().len())
    }

    /// Decodes up to a batch of records into `out`; `Ok(false)` at the end of the input.
    pub(super) fn fill(&mut self, name: &str, out: &mut Vec<Event>) -> Result<bool, Fault> {
        let header = match self.header {
            Some(h) => h,
            None => {
                let h = self.read_header(name)?;
                self.header = Some(h);
                self.tr.header(&self.program, out);
                h
            }
        };
        let at = self.input.offset();
        if self.records == header.events {
            let got = self.want(name, 1)?;
            if got == 0 {
                return Ok(false);
            }
            // The excess is counted up to EXTRA_COUNTED bytes only: an endless input
            // (`/dev/zero`, a pipe that never closes) after a header of zeros must not be read
            // forever, nor a large file to its end only to say how much of it is wrong.
            let mut extra = got as u64;
            self.input.consume(got);
            while extra <= EXTRA_COUNTED {
                let n = self.want(name, 1)?;
                if n == 0 {
                    break;
                }
                extra += n as u64;
                self.input.consume(n);
            }
            let extra = if extra > EXTRA_COUNTED {
                format!("more than {EXTRA_COUNTED}")
            } else {
                extra.to_string()
            };
            return Err(error(
                name,
                at,
                format!(
                    "{extra} bytes after the {} events that the header declares",
                    header.events
                ),
            ));
        }
        let got = self.want(name, RECORD_LEN as usize)?;
        if got < RECORD_LEN as usize {
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
        // Every whole record in the buffer, up to a batch and to the declared count.
        let data = self.input.data();
        let whole = (data.len() / RECORD_LEN as usize).min(BATCH).min(
            (header.events - self.records)
                .try_into()
                .unwrap_or(usize::MAX),
        );
        let (mut done, mut fault) = (0, None);
        for word in data[..whole * RECORD_LEN as usize].chunks_exact(RECORD_LEN as usize) {
            let word = u64::from_be_bytes(word.try_into().expect("8 bytes"));
            if push_known(&self.tr, word, out) {
                done += 1;
                continue;
            }
            let before = out.len();
            if let Err(m) = translate(&mut self.tr, &header, Record::decode(word), out) {
                // The declarations queued for the bad record go with it.
                out.truncate(before);
                fault = Some(error(name, at + done as u64 * RECORD_LEN, m));
                break;
            }
            done += 1;
        }
        self.records += done as u64;
        self.input.consume(done * RECORD_LEN as usize);
        match fault {
            Some(f) => Err(f),
            None => Ok(true),
        }
    }

    fn read_header(&mut self, name: &str) -> Result<Header, Fault> {
        let got = self.want(name, HEADER_LEN as usize)?;
        if got == 0 {
            return Err(error(name, 0, "empty trace (no header)"));
        }
        if got < HEADER_LEN as usize {
            return Err(error(
                name,
                0,
                format!(
                    "binary header too short: {got} bytes (a RAPID binary header is {HEADER_LEN})"
                ),
            ));
        }
        let raw: [u8; HEADER_LEN as usize] = self.input.data()[..HEADER_LEN as usize]
            .try_into()
            .expect("header bytes");
        self.input.consume(HEADER_LEN as usize);
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
}

fn error(name: &str, at: u64, message: impl Into<String>) -> Fault {
    Fault::Error(ReadError::new(name, Some(Position::Byte(at)), message))
}

fn io_error(name: &str, at: u64, e: io::Error) -> Fault {
    error(name, at, format!("read error: {e}"))
}

/// Pushes the event of the usual record, an acquisition or release by a thread of a lock (and
/// at a location) already numbered: nothing to declare and no error possible, so it is made
/// without [`translate`]'s checks and result (built in place in the batch: returned as an
/// `Option`, it was copied once more). A thread or lock in the translator's tables was checked
/// against the header when it was first seen (by [`translate`], the only one that adds them), so
/// the header's ranges need no second test here. Returns `false` for any other record, which
/// goes through [`translate`].
#[inline(always)]
fn push_known(tr: &Translator, word: u64, out: &mut Vec<Event>) -> bool {
    // Decoded here rather than passed in: the fields of a `Record` that the slow path also
    // needs were kept on the stack, four stores per record.
    let r = Record::decode(word);
    let known = |table: &[u64], n: u64| table.get(n as usize).copied().filter(|&x| x != 0);
    let (Some(t), Some(l)) = (
        known(&tr.thread_table, r.thread),
        known(&tr.lock_table, r.operand),
    ) else {
        return false;
    };
    if r.op == 1 {
        out.push(Event::Release { t, l, hold_ns: 0 });
        return true;
    }
    if r.op != 0 {
        return false;
    }
    match tr.site_table.get(r.location as usize).copied() {
        Some(s) if s != 0 => {
            out.push(Event::Acquire {
                t,
                l,
                m: Mode::Exclusive,
                how: How::Blocking,
                s: Some(s),
                wait_ns: 0,
            });
            true
        }
        _ => false,
    }
}

/// Queues the events of one record, checking its numbers against the header.
#[inline]
fn translate(
    tr: &mut Translator,
    header: &Header,
    r: Record,
    out: &mut Vec<Event>,
) -> Result<(), String> {
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
    let t = tr.thread_num(r.thread, out);
    let lock_range = || {
        format!(
            "`{op_name}` of lock {} out of range: the header declares {} locks",
            r.operand, header.locks
        )
    };
    let child_range = || {
        format!(
            "`{op_name}` of thread {} out of range: the header declares {} threads",
            r.operand, header.threads
        )
    };
    match r.op {
        0 | 8 => {
            if r.operand >= header.locks {
                return Err(lock_range());
            }
            let l = tr.lock_num(r.operand, out);
            let s = Some(tr.site_num(r.location, out));
            out.push(if r.op == 0 {
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
                    n: 1,
                    short: None,
                }
            });
        }
        1 => {
            if r.operand >= header.locks {
                return Err(lock_range());
            }
            let l = tr.lock_num(r.operand, out);
            out.push(Event::Release { t, l, hold_ns: 0 });
        }
        4 | 5 => {
            if r.operand >= header.threads {
                return Err(child_range());
            }
            let child = tr.thread_num(r.operand, out);
            out.push(if r.op == 4 {
                Event::Fork { t, child }
            } else {
                Event::Join {
                    t,
                    child,
                    scope: false,
                }
            });
        }
        // r, w, begin, end, branch: not lock events.
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whenever the fast path makes an event, `translate` makes that one event and nothing
    /// else, on random records (every operation code, threads and locks in and out of the
    /// header's range, locks beyond the table, locations seen and not): the fast path changes
    /// nothing but the cost. It is taken for most records once their numbers are known.
    #[test]
    fn the_fast_path_makes_what_translate_makes() {
        let header = Header {
            threads: 12,
            locks: 300_000,
            events: 0,
        };
        let mut tr = Translator::default();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rand = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let (mut fast, mut records) = (0, 0);
        for _ in 0..50_000 {
            let operand = if rand(4) == 0 {
                rand(300_010)
            } else {
                rand(50)
            };
            let record = Record {
                thread: rand(14),
                op: if rand(3) == 0 { rand(11) } else { rand(2) },
                operand,
                location: rand(60),
            };
            let mut made = Vec::new();
            let pushed = push_known(&tr, record.encode(), &mut made);
            let mut out = Vec::new();
            let result = translate(&mut tr, &header, record, &mut out);
            records += 1;
            if pushed {
                fast += 1;
                assert!(result.is_ok(), "{record:?}");
                assert_eq!(made.len(), 1, "{record:?}");
                assert_eq!(out, made, "{record:?}");
            } else {
                assert!(made.is_empty(), "{record:?}");
            }
        }
        assert!(
            fast * 4 > records,
            "{fast} of {records} records on the fast path"
        );
    }

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
