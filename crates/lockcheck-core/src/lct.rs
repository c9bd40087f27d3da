//! `.lct`: lockcheck's compact binary trace format (version 2, and the recorder's versions 3, 4
//! and 5 in [`raw`]), the binary twin of the JSON Lines
//! trace ([`crate::trace`]): the same events, field for field, in a fraction of the bytes and
//! without any parsing of text.
//!
//! Version 2 added one field, the header's `hold_resolution_ns` (after `start_unix_ms`); a version-1
//! header ends before it, and reads as 0 (precise hold times). The version moved so that a reader
//! of version 1 refuses the new header with "unsupported .lct version 2" rather than as corrupt.
//!
//! ```text
//! file    = magic record*
//! magic   = "LCT" version            (4 bytes; version = 2, or 1, 3, 4, 5: read too)
//! record  = len:varint body          (len = number of bytes of body)
//! body    = tag:u8 field*            (fields of the event, in the order of `crate::trace::Event`)
//! varint  = unsigned LEB128 (7 bits per byte, low first, at most 10 bytes)
//! string  = len:varint UTF-8 bytes
//! option  = 0 | 1 value
//! ```
//!
//! Streamable: records are self-delimiting and written whole, so a reader can stop at any record
//! boundary, and a file cut by a crash is readable up to its last complete record
//! ([`DecodeError::Truncated`] tells a cut record from a malformed one). A reader meets an unknown
//! `tag` only in a newer version, whose magic differs. No dependency beyond `std`: the runtime's
//! recorder can use the encoder as is. The format is documented in `docs/trace-format.md`.

use crate::trace::{ClassStats, Event, Frame, How, LockKind, Mode, Short};
use std::mem::MaybeUninit;

pub mod raw;

/// The first four bytes of a `.lct` file as this crate writes it (version 2).
pub const MAGIC: [u8; 4] = *b"LCT\x02";

/// The first four bytes of a version-1 `.lct` file (no `hold_resolution_ns` in the header), which
/// readers still accept.
pub const MAGIC_V1: [u8; 4] = *b"LCT\x01";

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end inside a record (a file cut by a crash, or more input to come).
    Truncated,
    /// The bytes are not a valid record; the message says why.
    Invalid(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("the record is cut off"),
            DecodeError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Checks the magic at the start of a file: `Ok(version)`, or why it is not a `.lct` file of
/// version 1 to 5 (3 to 5: [`raw`]).
pub fn check_magic(head: &[u8]) -> Result<u8, DecodeError> {
    if head.len() < MAGIC.len() {
        if MAGIC.starts_with(head) {
            return Err(DecodeError::Truncated);
        }
    } else if head[..4] == MAGIC
        || head[..4] == MAGIC_V1
        || head[..4] == raw::MAGIC_V3
        || head[..4] == raw::MAGIC_V4
        || head[..4] == raw::MAGIC_V5
    {
        return Ok(head[3]);
    } else if head[..3] == MAGIC[..3] {
        return Err(DecodeError::Invalid(format!(
            "unsupported .lct version {} (this reader knows versions 1 to 5)",
            head[3]
        )));
    }
    Err(DecodeError::Invalid(
        "not a .lct trace (the file does not start with \"LCT\")".into(),
    ))
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_opt<T>(out: &mut Vec<u8>, v: &Option<T>, f: impl FnOnce(&mut Vec<u8>, &T)) {
    match v {
        None => out.push(0),
        Some(x) => {
            out.push(1);
            f(out, x);
        }
    }
}

/// The byte of a request's `short` (see [`Short`]).
fn short_code(s: Short) -> u8 {
    match s {
        Short::Held => 0,
        Short::Alone => 1,
    }
}

fn mode_code(m: Mode) -> u8 {
    match m {
        Mode::Exclusive => 0,
        Mode::Shared => 1,
        Mode::SharedRecursive => 2,
        Mode::Upgradable => 3,
        Mode::Permit => 4,
    }
}

fn how_code(h: How) -> u8 {
    match h {
        How::Blocking => 0,
        How::Try => 1,
        How::Timed => 2,
    }
}

fn kind_code(k: LockKind) -> u8 {
    match k {
        LockKind::Mutex => 0,
        LockKind::Rwlock => 1,
        LockKind::Semaphore => 2,
        LockKind::Condvar => 3,
        LockKind::Unknown => 4,
        LockKind::Once => 5,
        LockKind::End => 6,
        LockKind::Channel => 7,
        LockKind::Barrier => 8,
    }
}

/// Bytes a record of the hot kinds (`request`, `acquire`, `fail`, `release`) takes at most:
/// length 1, tag 1, two varints of 10, mode, how, an optional site of 6, a varint of 10.
const SMALL_MAX: usize = 40;

/// A record of the hot kinds, whose body is always under 128 bytes (so its length is one byte,
/// set at the end), written straight into the output's spare capacity: no buffer of its own, no
/// per-byte length update.
struct Small<'a> {
    b: &'a mut [MaybeUninit<u8>],
    n: usize,
}

impl Small<'_> {
    #[inline(always)]
    fn byte(&mut self, v: u8) {
        self.b[self.n].write(v);
        self.n += 1;
    }

    #[inline(always)]
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    #[inline(always)]
    fn opt_varint(&mut self, v: Option<u32>) {
        match v {
            None => self.byte(0),
            Some(x) => {
                self.byte(1);
                self.varint(u64::from(x));
            }
        }
    }
}

impl<'a> Small<'a> {
    /// Starts a record with `tag` in `out`'s spare capacity (at least [`SMALL_MAX`] bytes,
    /// reserved by the caller).
    #[inline(always)]
    fn start(out: &'a mut Vec<u8>, tag: u8) -> Small<'a> {
        let mut r = Small {
            b: &mut out.spare_capacity_mut()[..SMALL_MAX],
            n: 1,
        };
        r.byte(tag);
        r
    }

    /// Sets the length byte; returns the record's size.
    #[inline(always)]
    fn end(self) -> usize {
        self.b[0].write((self.n - 1) as u8);
        self.n
    }
}

/// Makes the `n` bytes a [`Small`] wrote part of `out`.
#[inline(always)]
fn commit(out: &mut Vec<u8>, n: usize) {
    debug_assert!(n <= SMALL_MAX);
    // SAFETY: `Small` wrote every byte it counted, from the first spare one on, within the
    // capacity the caller reserved.
    unsafe { out.set_len(out.len() + n) };
}

/// Appends an `acquire` record (`fail: true`: a `fail` record), the bytes [`encode`] writes for
/// the same event, without building an [`Event`]: for writers that hold the fields already (the
/// runtime's recorder).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn encode_acquire(
    out: &mut Vec<u8>,
    fail: bool,
    t: u64,
    l: u64,
    m: Mode,
    how: How,
    s: Option<u32>,
    wait_ns: u64,
) {
    out.reserve(SMALL_MAX);
    let mut r = Small::start(out, if fail { 7 } else { 6 });
    r.varint(t);
    r.varint(l);
    r.byte(mode_code(m));
    r.byte(how_code(how));
    r.opt_varint(s);
    r.varint(wait_ns);
    let n = r.end();
    commit(out, n);
}

/// Appends a `request` record, as [`encode`] writes it.
#[inline(always)]
///
/// `permits` (a semaphore's `acquire_many(n)`) is written after the site only when it is not 1:
/// a record without it requests one, so records of older writers read the same.
pub fn encode_request(
    out: &mut Vec<u8>,
    t: u64,
    l: u64,
    m: Mode,
    s: Option<u32>,
    permits: u32,
    short: Option<Short>,
) {
    out.reserve(SMALL_MAX);
    let mut r = Small::start(out, 5);
    r.varint(t);
    r.varint(l);
    r.byte(mode_code(m));
    r.opt_varint(s);
    // The permits, written when not 1, or when `short` follows (a byte after them).
    if permits != 1 || short.is_some() {
        r.varint(u64::from(permits));
    }
    if let Some(short) = short {
        r.byte(short_code(short));
    }
    let n = r.end();
    commit(out, n);
}

/// Appends a `release` record, as [`encode`] writes it.
#[inline(always)]
pub fn encode_release(out: &mut Vec<u8>, t: u64, l: u64, hold_ns: u64) {
    out.reserve(SMALL_MAX);
    let mut r = Small::start(out, 8);
    r.varint(t);
    r.varint(l);
    r.varint(hold_ns);
    let n = r.end();
    commit(out, n);
}

/// Appends the record of `event` to `out` (the magic is written once, before the first record).
///
/// Writes straight into `out`, without a buffer of its own: nothing is allocated beyond what
/// `out` needs to grow, so a writer that reuses its buffer encodes without allocating. The body
/// goes after a one-byte length, which is widened in place in the rare case of a body of 128
/// bytes or more (a site with frames, a long class key).
pub fn encode(event: &Event, out: &mut Vec<u8>) {
    match *event {
        Event::Request {
            t,
            l,
            m,
            s,
            n,
            short,
        } => return encode_request(out, t, l, m, s, n, short),
        Event::Acquire {
            t,
            l,
            m,
            how,
            s,
            wait_ns,
        } => return encode_acquire(out, false, t, l, m, how, s, wait_ns),
        Event::Fail {
            t,
            l,
            m,
            how,
            s,
            wait_ns,
            n: 1,
        } => return encode_acquire(out, true, t, l, m, how, s, wait_ns),
        Event::Release { t, l, hold_ns } => return encode_release(out, t, l, hold_ns),
        _ => {}
    }
    encode_general(event, out);
}

/// Every event the general way: the body after a one-byte length, widened when needed.
fn encode_general(event: &Event, out: &mut Vec<u8>) {
    let start = out.len();
    out.push(0);
    let b = &mut *out;
    match event {
        Event::Header {
            version,
            pid,
            program,
            start_unix_ms,
            hold_resolution_ns,
        } => {
            b.push(0);
            put_varint(b, *version as u64);
            put_varint(b, *pid as u64);
            put_str(b, program);
            put_varint(b, *start_unix_ms);
            put_varint(b, *hold_resolution_ns);
        }
        Event::Thread { t, name } => {
            b.push(1);
            put_varint(b, *t);
            put_opt(b, name, |b, n| put_str(b, n));
        }
        Event::Class { c, key, kind } => {
            b.push(2);
            put_varint(b, *c as u64);
            put_str(b, key);
            b.push(kind_code(*kind));
        }
        Event::Site { s, loc, frames } => {
            b.push(3);
            put_varint(b, *s as u64);
            put_str(b, loc);
            put_varint(b, frames.len() as u64);
            for f in frames {
                put_opt(b, &f.function, |b, x| put_str(b, x));
                put_opt(b, &f.file, |b, x| put_str(b, x));
                put_opt(b, &f.line, |b, x| put_varint(b, *x as u64));
            }
        }
        Event::Lock { l, c, permits } => {
            b.push(4);
            put_varint(b, *l);
            put_varint(b, *c as u64);
            put_opt(b, permits, |b, x| put_varint(b, *x));
        }
        Event::Request {
            t,
            l,
            m,
            s,
            n,
            short,
        } => {
            b.push(5);
            put_varint(b, *t);
            put_varint(b, *l);
            b.push(mode_code(*m));
            put_opt(b, s, |b, x| put_varint(b, *x as u64));
            if *n != 1 || short.is_some() {
                put_varint(b, u64::from(*n));
            }
            if let Some(short) = short {
                b.push(short_code(*short));
            }
        }
        Event::Acquire {
            t,
            l,
            m,
            how,
            s,
            wait_ns,
        } => {
            b.push(6);
            put_varint(b, *t);
            put_varint(b, *l);
            b.push(mode_code(*m));
            b.push(how_code(*how));
            put_opt(b, s, |b, x| put_varint(b, *x as u64));
            put_varint(b, *wait_ns);
        }
        Event::Fail {
            t,
            l,
            m,
            how,
            s,
            wait_ns,
            n,
        } => {
            b.push(7);
            put_varint(b, *t);
            put_varint(b, *l);
            b.push(mode_code(*m));
            b.push(how_code(*how));
            put_opt(b, s, |b, x| put_varint(b, *x as u64));
            put_varint(b, *wait_ns);
            if *n != 1 {
                put_varint(b, u64::from(*n));
            }
        }
        Event::Release { t, l, hold_ns } => {
            b.push(8);
            put_varint(b, *t);
            put_varint(b, *l);
            put_varint(b, *hold_ns);
        }
        Event::Convert { t, l, m } => {
            b.push(9);
            put_varint(b, *t);
            put_varint(b, *l);
            b.push(mode_code(*m));
        }
        Event::CondWait { t, cv, l, timed } => {
            b.push(10);
            put_varint(b, *t);
            put_varint(b, *cv);
            put_varint(b, *l);
            // Only when timed (older readers refuse a record that has it, as extra bytes).
            if *timed {
                put_varint(b, 1);
            }
        }
        Event::Notify { t, cv, s } => {
            b.push(23);
            put_varint(b, *t);
            put_varint(b, *cv);
            put_opt(b, s, |b, x| put_varint(b, *x as u64));
        }
        Event::Forked { parent, t } => {
            b.push(24);
            put_varint(b, u64::from(*parent));
            put_varint(b, *t);
        }
        Event::LeftHeld { t, l, m, s } => {
            b.push(25);
            put_varint(b, *t);
            put_varint(b, *l);
            b.push(mode_code(*m));
            put_opt(b, s, |b, x| put_varint(b, *x as u64));
        }
        Event::Fork { t, child } => {
            b.push(11);
            put_varint(b, *t);
            put_varint(b, *child);
        }
        Event::Join { t, child, scope } => {
            b.push(12);
            put_varint(b, *t);
            put_varint(b, *child);
            // Only for a scope's join (older readers refuse a record that has it, as extra bytes).
            if *scope {
                put_varint(b, 1);
            }
        }
        Event::Returned { t } => {
            b.push(26);
            put_varint(b, *t);
        }
        Event::Drop { l } => {
            b.push(13);
            put_varint(b, *l);
        }
        Event::Forget { l, n } => {
            b.push(16);
            put_varint(b, *l);
            put_varint(b, *n);
        }
        Event::Written { l } => {
            b.push(21);
            put_varint(b, *l);
        }
        Event::ClassWritten { c } => {
            b.push(22);
            put_varint(b, u64::from(*c));
        }
        Event::HeldAcrossAwait {
            t,
            l,
            m,
            s,
            h,
            ht,
            hs,
        } => {
            b.push(15);
            put_varint(b, *t);
            put_varint(b, *l);
            b.push(mode_code(*m));
            put_opt(b, s, |b, x| put_varint(b, *x as u64));
            put_varint(b, *h);
            put_varint(b, *ht);
            put_opt(b, hs, |b, x| put_varint(b, *x as u64));
        }
        Event::Stats { c, stats } => {
            b.push(14);
            put_varint(b, *c as u64);
            for v in [
                stats.acquisitions,
                stats.contended,
                stats.wait_total_ns,
                stats.wait_max_ns,
                stats.hold_total_ns,
                stats.hold_max_ns,
            ] {
                put_varint(b, v);
            }
        }
    }
    let body_len = out.len() - start - 1;
    if body_len < 0x80 {
        out[start] = body_len as u8;
        return;
    }
    let mut len = [0u8; 10];
    let mut n = 0;
    let mut v = body_len as u64;
    while v >= 0x80 {
        len[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    len[n] = v as u8;
    n += 1;
    let end = out.len();
    out.resize(end + n - 1, 0);
    out.copy_within(start + 1..end, start + n);
    out[start..start + n].copy_from_slice(&len[..n]);
}

/// A cursor over one record's body.
struct Body<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Body<'a> {
    fn invalid(&self, what: &str) -> DecodeError {
        DecodeError::Invalid(format!("{what} at byte {} of the record", self.pos))
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.invalid("record ends early"))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        match read_varint(&self.buf[self.pos..]) {
            Ok((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            Err(DecodeError::Truncated) => Err(self.invalid("record ends inside a number")),
            Err(e) => Err(e),
        }
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let v = self.varint()?;
        u32::try_from(v).map_err(|_| self.invalid("number out of range"))
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let n = self.varint()? as usize;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.invalid("record ends inside a string"))?;
        let s = std::str::from_utf8(&self.buf[self.pos..end])
            .map_err(|_| self.invalid("invalid UTF-8 in a string"))?
            .to_owned();
        self.pos = end;
        Ok(s)
    }

    fn opt<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.byte()? {
            0 => Ok(None),
            1 => f(self).map(Some),
            _ => Err(self.invalid("bad option flag")),
        }
    }

    fn short(&mut self) -> Result<Short, DecodeError> {
        Ok(match self.byte()? {
            0 => Short::Held,
            1 => Short::Alone,
            _ => return Err(self.invalid("unknown short of a request")),
        })
    }

    fn mode(&mut self) -> Result<Mode, DecodeError> {
        Ok(match self.byte()? {
            0 => Mode::Exclusive,
            1 => Mode::Shared,
            2 => Mode::SharedRecursive,
            3 => Mode::Upgradable,
            4 => Mode::Permit,
            _ => return Err(self.invalid("unknown mode")),
        })
    }

    fn how(&mut self) -> Result<How, DecodeError> {
        Ok(match self.byte()? {
            0 => How::Blocking,
            1 => How::Try,
            2 => How::Timed,
            _ => return Err(self.invalid("unknown acquisition kind")),
        })
    }

    fn kind(&mut self) -> Result<LockKind, DecodeError> {
        Ok(match self.byte()? {
            0 => LockKind::Mutex,
            1 => LockKind::Rwlock,
            2 => LockKind::Semaphore,
            3 => LockKind::Condvar,
            4 => LockKind::Unknown,
            5 => LockKind::Once,
            6 => LockKind::End,
            7 => LockKind::Channel,
            8 => LockKind::Barrier,
            _ => return Err(self.invalid("unknown lock kind")),
        })
    }
}

/// Reads one LEB128 varint: the value and the bytes it took.
pub fn read_varint(buf: &[u8]) -> Result<(u64, usize), DecodeError> {
    let mut v: u64 = 0;
    for (i, &b) in buf.iter().enumerate() {
        if i == 9 && b > 1 {
            return Err(DecodeError::Invalid("number longer than 64 bits".into()));
        }
        v |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    if buf.len() >= 10 {
        return Err(DecodeError::Invalid("number longer than 64 bits".into()));
    }
    Err(DecodeError::Truncated)
}

/// The most bytes one record may take (a guard against a corrupt length allocating without
/// bound; real records are tens of bytes, a site with a deep backtrace a few kilobytes).
pub const MAX_RECORD_LEN: u64 = 16 << 20;

/// Decodes the record at the start of `buf` (after the magic): the event and the bytes it took,
/// or `Ok(None)` when `buf` is empty. [`DecodeError::Truncated`] when `buf` ends inside the record.
pub fn decode(buf: &[u8]) -> Result<Option<(Event, usize)>, DecodeError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let (len, n) = read_varint(buf)?;
    if len == 0 || len > MAX_RECORD_LEN {
        return Err(DecodeError::Invalid(format!("bad record length {len}")));
    }
    let end = n + len as usize;
    if buf.len() < end {
        return Err(DecodeError::Truncated);
    }
    let mut b = Body {
        buf: &buf[n..end],
        pos: 0,
    };
    let tag = b.byte()?;
    let event = match tag {
        0 => Event::Header {
            version: b.u32()?,
            pid: b.u32()?,
            program: b.string()?,
            start_unix_ms: b.varint()?,
            // Version 2; a version-1 header ends here (precise hold times).
            hold_resolution_ns: if b.pos < b.buf.len() { b.varint()? } else { 0 },
        },
        1 => Event::Thread {
            t: b.varint()?,
            name: b.opt(|b| b.string())?,
        },
        2 => Event::Class {
            c: b.u32()?,
            key: b.string()?,
            kind: b.kind()?,
        },
        3 => {
            let s = b.u32()?;
            let loc = b.string()?;
            let count = b.varint()?;
            // Each frame takes at least 3 bytes: a count beyond that is corrupt.
            if count > (b.buf.len() as u64) / 3 {
                return Err(b.invalid("frame count larger than the record"));
            }
            let mut frames = Vec::with_capacity(count as usize);
            for _ in 0..count {
                frames.push(Frame {
                    function: b.opt(|b| b.string())?,
                    file: b.opt(|b| b.string())?,
                    line: b.opt(|b| b.u32())?,
                });
            }
            Event::Site { s, loc, frames }
        }
        4 => Event::Lock {
            l: b.varint()?,
            c: b.u32()?,
            permits: b.opt(|b| b.varint())?,
        },
        5 => Event::Request {
            t: b.varint()?,
            l: b.varint()?,
            m: b.mode()?,
            s: b.opt(|b| b.u32())?,
            // Written only when not 1 or before a `short` (and never by writers older than
            // the field).
            n: if b.pos == b.buf.len() { 1 } else { b.u32()? },
            // A byte after the permits, only when the semaphore was short (and never by
            // writers older than the field).
            short: if b.pos == b.buf.len() {
                None
            } else {
                Some(b.short()?)
            },
        },
        6 | 7 => {
            let (t, l, m, how) = (b.varint()?, b.varint()?, b.mode()?, b.how()?);
            let (s, wait_ns) = (b.opt(|b| b.u32())?, b.varint()?);
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
                    // A streak's count, written only when not 1 (and never by writers older
                    // than the field, whose readers refuse a record that has it).
                    n: if b.pos == b.buf.len() { 1 } else { b.u32()? },
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
            // Written only for a timed wait (never by writers older than the field).
            timed: b.pos != b.buf.len() && {
                if b.varint()? != 1 {
                    return Err(b.invalid("a cond_wait's timed flag is 1 when present"));
                }
                true
            },
        },
        23 => Event::Notify {
            t: b.varint()?,
            cv: b.varint()?,
            s: b.opt(|b| b.u32())?,
        },
        24 => Event::Forked {
            parent: b.u32()?,
            t: b.varint()?,
        },
        25 => Event::LeftHeld {
            t: b.varint()?,
            l: b.varint()?,
            m: b.mode()?,
            s: b.opt(|b| b.u32())?,
        },
        11 => Event::Fork {
            t: b.varint()?,
            child: b.varint()?,
        },
        12 => Event::Join {
            t: b.varint()?,
            child: b.varint()?,
            // Written only for a scope's join (never by writers older than the field).
            scope: b.pos != b.buf.len() && {
                if b.varint()? != 1 {
                    return Err(b.invalid("a join's scope flag is 1 when present"));
                }
                true
            },
        },
        26 => Event::Returned { t: b.varint()? },
        13 => Event::Drop { l: b.varint()? },
        16 => Event::Forget {
            l: b.varint()?,
            n: b.varint()?,
        },
        21 => Event::Written { l: b.varint()? },
        22 => Event::ClassWritten { c: b.u32()? },
        15 => Event::HeldAcrossAwait {
            t: b.varint()?,
            l: b.varint()?,
            m: b.mode()?,
            s: b.opt(|b| b.u32())?,
            h: b.varint()?,
            ht: b.varint()?,
            hs: b.opt(|b| b.u32())?,
        },
        14 => Event::Stats {
            c: b.u32()?,
            stats: ClassStats {
                acquisitions: b.varint()?,
                contended: b.varint()?,
                wait_total_ns: b.varint()?,
                wait_max_ns: b.varint()?,
                hold_total_ns: b.varint()?,
                hold_max_ns: b.varint()?,
            },
        },
        t => return Err(DecodeError::Invalid(format!("unknown record tag {t}"))),
    };
    if b.pos != b.buf.len() {
        return Err(b.invalid("extra bytes after the event"));
    }
    Ok(Some((event, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_events() -> Vec<Event> {
        vec![
            Event::Header {
                version: 1,
                pid: 42,
                program: "prög".into(),
                start_unix_ms: 1_732_540_800_000,
                hold_resolution_ns: 4_000_000,
            },
            Event::Thread {
                t: 1,
                name: Some("main".into()),
            },
            Event::Thread { t: 2, name: None },
            Event::Class {
                c: 1,
                key: "accounts".into(),
                kind: LockKind::Rwlock,
            },
            Event::Class {
                c: 2,
                key: "mutex".into(),
                kind: LockKind::Mutex,
            },
            Event::Class {
                c: 3,
                key: "semaphore".into(),
                kind: LockKind::Semaphore,
            },
            Event::Class {
                c: 4,
                key: "condvar".into(),
                kind: LockKind::Condvar,
            },
            Event::Class {
                c: 5,
                key: "unknown".into(),
                kind: LockKind::Unknown,
            },
            Event::Class {
                c: 6,
                key: "once".into(),
                kind: LockKind::Once,
            },
            Event::Class {
                c: 7,
                key: "end of thread spawned at src/a.rs:1:2".into(),
                kind: LockKind::End,
            },
            Event::Class {
                c: 8,
                key: "src/a.rs:3:4".into(),
                kind: LockKind::Channel,
            },
            Event::Site {
                s: 3,
                loc: "src/a.rs:1:2".into(),
                frames: vec![
                    Frame {
                        function: Some("f".into()),
                        file: Some("src/a.rs".into()),
                        line: Some(1),
                    },
                    Frame {
                        function: None,
                        file: None,
                        line: None,
                    },
                ],
            },
            Event::Lock {
                l: u64::MAX,
                c: 1,
                permits: Some(u64::MAX),
            },
            Event::Request {
                t: 1,
                l: 2,
                m: Mode::Upgradable,
                s: Some(3),
                n: 1,
                short: Some(Short::Held),
            },
            Event::Request {
                t: 1,
                l: 2,
                m: Mode::Permit,
                s: None,
                n: u32::MAX,
                short: Some(Short::Alone),
            },
            Event::Acquire {
                t: 1,
                l: 2,
                m: Mode::Shared,
                how: How::Timed,
                s: None,
                wait_ns: 12_345,
            },
            Event::Fail {
                t: 1,
                l: 2,
                m: Mode::Permit,
                how: How::Try,
                s: Some(u32::MAX),
                wait_ns: 0,
                n: 1,
            },
            Event::Fail {
                t: 1,
                l: 2,
                m: Mode::Exclusive,
                how: How::Try,
                s: Some(3),
                wait_ns: 0,
                n: 999_000,
            },
            Event::Release {
                t: 1,
                l: 2,
                hold_ns: 99,
            },
            Event::Convert {
                t: 1,
                l: 2,
                m: Mode::SharedRecursive,
            },
            Event::CondWait {
                t: 1,
                cv: 5,
                l: 2,
                timed: false,
            },
            Event::CondWait {
                t: 1,
                cv: 5,
                l: 2,
                timed: true,
            },
            Event::Notify {
                t: 1,
                cv: 5,
                s: Some(3),
            },
            Event::Notify {
                t: 1,
                cv: 5,
                s: None,
            },
            Event::Forked {
                parent: u32::MAX,
                t: 1,
            },
            Event::LeftHeld {
                t: 1,
                l: 2,
                m: Mode::Upgradable,
                s: Some(3),
            },
            Event::LeftHeld {
                t: 1,
                l: u64::MAX,
                m: Mode::Exclusive,
                s: None,
            },
            Event::Fork { t: 1, child: 2 },
            Event::Join {
                t: 1,
                child: 2,
                scope: false,
            },
            Event::Join {
                t: 1,
                child: u64::MAX,
                scope: true,
            },
            Event::Returned { t: u64::MAX },
            Event::Drop { l: 2 },
            Event::Forget { l: 2, n: u64::MAX },
            Event::Written { l: u64::MAX },
            Event::ClassWritten { c: u32::MAX },
            Event::HeldAcrossAwait {
                t: 1 << 62 | 7,
                l: 2,
                m: Mode::Exclusive,
                s: Some(3),
                h: 4,
                ht: 1 << 62 | 9,
                hs: None,
            },
            Event::Stats {
                c: 1,
                stats: ClassStats {
                    acquisitions: 1,
                    contended: 2,
                    wait_total_ns: 3,
                    wait_max_ns: 4,
                    hold_total_ns: 5,
                    hold_max_ns: u64::MAX,
                },
            },
        ]
    }

    #[test]
    fn every_event_round_trips() {
        let events = all_events();
        let mut buf = MAGIC.to_vec();
        for e in &events {
            encode(e, &mut buf);
        }
        check_magic(&buf).unwrap();
        let mut pos = 4;
        let mut back = Vec::new();
        while let Some((e, n)) = decode(&buf[pos..]).unwrap() {
            back.push(e);
            pos += n;
        }
        assert_eq!(back, events);
    }

    #[test]
    fn hot_records_are_the_general_encoding() {
        let nums = [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX];
        let modes = [Mode::Exclusive, Mode::Shared, Mode::Permit];
        let hows = [How::Blocking, How::Try, How::Timed];
        for &n in &nums {
            for &m in &modes {
                for &how in &hows {
                    for s in [None, Some(0u32), Some(200), Some(u32::MAX)] {
                        let events = [
                            Event::Request {
                                t: n,
                                l: !n,
                                m,
                                s,
                                n: (n as u32).max(1),
                                short: None,
                            },
                            Event::Acquire {
                                t: n,
                                l: n / 3,
                                m,
                                how,
                                s,
                                wait_ns: n,
                            },
                            Event::Fail {
                                t: 1,
                                l: n,
                                m,
                                how,
                                s,
                                wait_ns: !n,
                                n: 1,
                            },
                            Event::Release {
                                t: n,
                                l: 7,
                                hold_ns: n,
                            },
                        ];
                        for e in &events {
                            let (mut a, mut b) = (vec![9u8], vec![9u8]);
                            encode(e, &mut a);
                            encode_general(e, &mut b);
                            assert_eq!(a, b, "{e:?}");
                            assert_eq!(decode(&a[1..]).unwrap().unwrap().0, *e);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn long_bodies_widen_their_length_in_place() {
        // Bodies around each width of the length varint (1, 2 and 3 bytes), after other bytes.
        let mut buf = MAGIC.to_vec();
        let mut events = Vec::new();
        for n in [0, 100, 118, 119, 120, 200, 16_370, 16_380, 16_400, 70_000] {
            events.push(Event::Class {
                c: 1,
                key: "k".repeat(n),
                kind: LockKind::Mutex,
            });
        }
        for e in &events {
            encode(e, &mut buf);
        }
        let mut pos = 4;
        let mut back = Vec::new();
        while let Some((e, n)) = decode(&buf[pos..]).unwrap() {
            back.push(e);
            pos += n;
        }
        assert_eq!(pos, buf.len());
        assert_eq!(back, events);
    }

    #[test]
    fn every_cut_is_truncated_at_a_record_boundary() {
        let mut buf = Vec::new();
        let mut ends = vec![0];
        for e in all_events() {
            encode(&e, &mut buf);
            ends.push(buf.len());
        }
        for cut in 0..buf.len() {
            let mut pos = 0;
            let mut n_events = 0;
            let err = loop {
                match decode(&buf[pos..cut]) {
                    Ok(Some((_, n))) => {
                        pos += n;
                        n_events += 1;
                    }
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            };
            // Everything up to the last complete record is read, and only a cut inside a
            // record is reported (as truncated, not invalid).
            assert_eq!(ends[n_events], pos);
            assert_eq!(err.is_some(), !ends.contains(&cut), "cut at {cut}");
            if let Some(e) = err {
                assert_eq!(e, DecodeError::Truncated, "cut at {cut}");
            }
        }
    }

    #[test]
    fn a_version_1_header_reads_as_precise_hold_times() {
        check_magic(&MAGIC_V1).unwrap();
        // Version 1's header: tag, version, pid, program, start_unix_ms, and no resolution.
        let mut body = vec![0u8, 1, 42];
        put_str(&mut body, "p");
        put_varint(&mut body, 7);
        let mut rec = Vec::new();
        put_varint(&mut rec, body.len() as u64);
        rec.extend_from_slice(&body);
        let (e, n) = decode(&rec).unwrap().unwrap();
        assert_eq!(n, rec.len());
        assert_eq!(
            e,
            Event::Header {
                version: 1,
                pid: 42,
                program: "p".into(),
                start_unix_ms: 7,
                hold_resolution_ns: 0,
            }
        );
    }

    #[test]
    fn bad_input_is_invalid_not_a_panic() {
        assert!(matches!(
            check_magic(b"LCT\x06"),
            Err(DecodeError::Invalid(_))
        ));
        assert!(matches!(
            check_magic(b"{\"e\""),
            Err(DecodeError::Invalid(_))
        ));
        assert_eq!(check_magic(b"LC"), Err(DecodeError::Truncated));
        for bytes in [
            &[0u8][..],
            &[2, 99, 0],
            &[0xff; 11],
            &[3, 6, 1, 1],
            &[5, 3, 0, 5, 1, 0],
            &[2, 8, 1, 2],
        ] {
            assert!(
                matches!(decode(bytes), Err(DecodeError::Invalid(_))),
                "{bytes:?}"
            );
        }
    }
}
