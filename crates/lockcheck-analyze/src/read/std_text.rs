//! RAPID's text ("STD") format: one event per line, `T1|acq(L3)|42`.

use super::json::line_error;
use super::lines::Lines;
use super::{
    Fault, Position, ReadError, Translator, BATCH, SMALL_LOCKS, SMALL_SITES, TRUNCATED_HINT,
};
use lockcheck_core::trace::{Event, How, LockNo, Mode, SiteNo, ThreadNo};

/// The operations of the STD format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Acq,
    Rel,
    Req,
    Read,
    Write,
    Fork,
    Join,
    Begin,
    End,
    Branch,
}

const OPS: &str = "acq, rel, req, r, w, fork, join, begin, end, branch";

impl Op {
    fn from_name(name: &str) -> Option<Op> {
        Op::from_bytes(name.as_bytes())
    }

    #[inline]
    fn from_bytes(name: &[u8]) -> Option<Op> {
        Some(match name {
            b"acq" => Op::Acq,
            b"rel" => Op::Rel,
            b"req" => Op::Req,
            b"r" => Op::Read,
            b"w" => Op::Write,
            b"fork" => Op::Fork,
            b"join" => Op::Join,
            b"begin" => Op::Begin,
            b"end" => Op::End,
            b"branch" => Op::Branch,
            _ => return None,
        })
    }

    /// Whether the operation needs an argument (`begin`, `end` and `branch` may go without).
    fn needs_arg(self) -> bool {
        !matches!(self, Op::Begin | Op::End | Op::Branch)
    }

    /// An example argument for messages.
    fn example_arg(self) -> &'static str {
        match self {
            Op::Fork | Op::Join => "2",
            Op::Read | Op::Write => "V1",
            _ => "L3",
        }
    }
}

/// One parsed line, borrowing from it.
#[derive(Debug)]
struct StdLine<'a> {
    thread: &'a [u8],
    op: Op,
    arg: Option<&'a [u8]>,
    loc: Option<&'a [u8]>,
}

/// A problem at a 1-based column.
type Problem = (u64, String);

/// Decodes STD lines into core events.
pub(super) struct StdDecoder {
    lines: Lines,
    program: String,
    started: bool,
    pub(super) tr: Translator,
}

impl StdDecoder {
    pub(super) fn new(lines: Lines, program: String) -> StdDecoder {
        StdDecoder {
            lines,
            program,
            started: false,
            tr: Translator::default(),
        }
    }

    /// Decodes up to a batch of lines into `out`; `Ok(false)` at the end of the input.
    pub(super) fn fill(&mut self, name: &str, out: &mut Vec<Event>) -> Result<bool, Fault> {
        let start = out.len();
        while out.len() - start < BATCH {
            // The usual lines straight in the read buffer (see `translate_run`), without the
            // search for their ends and the lines' own slices.
            if self.started {
                let room = BATCH - (out.len() - start);
                let tr = &mut self.tr;
                if self
                    .lines
                    .next_run(|data| translate_run(tr, data, out, room))
                    > 0
                {
                    continue;
                }
            }
            // Any other line of plain tokens, also straight in the buffer.
            if self.started
                && self
                    .lines
                    .next_with(|data| translate_plain_at(&mut self.tr, data, out))
            {
                continue;
            }
            let line = match self.lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) if self.started => return Ok(false),
                Ok(None) => {
                    let pos = Position::LineCol {
                        line: self.lines.lines_read() + 1,
                        col: 1,
                    };
                    return Err(Fault::Error(ReadError::new(
                        name,
                        Some(pos),
                        "empty trace (no events)",
                    )));
                }
                Err(e) => return Err(line_error(name, e)),
            };
            if self.started && translate_common(&mut self.tr, line.bytes, out) {
                continue;
            }
            if let Some(p) = parse_plain(line.bytes) {
                if !self.started {
                    self.tr.header(&self.program, out);
                    self.started = true;
                }
                translate(&mut self.tr, &p, out);
                continue;
            }
            if line.bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let (no, terminated) = (line.no, line.terminated);
            let parsed = match std::str::from_utf8(line.bytes) {
                Ok(text) => parse(text),
                Err(e) => Err((e.valid_up_to() as u64 + 1, "invalid UTF-8".to_owned())),
            };
            let parsed = match parsed {
                Ok(p) => p,
                Err((col, message)) => {
                    let at = |col| Some(Position::LineCol { line: no, col });
                    return Err(if terminated {
                        Fault::Error(ReadError::new(name, at(col), message))
                    } else {
                        Fault::Truncated {
                            pos: Position::LineCol { line: no, col: 1 },
                            error: ReadError::new(
                                name,
                                at(col),
                                format!("last line is incomplete ({message}): {TRUNCATED_HINT}"),
                            ),
                        }
                    });
                }
            };
            if !self.started {
                self.tr.header(&self.program, out);
                self.started = true;
            }
            translate(&mut self.tr, &parsed, out);
        }
        Ok(true)
    }
}

/// The event of an `acq`, `req` or `rel` line (`s` is ignored for `rel`).
#[inline]
fn lock_event(op: Op, t: ThreadNo, l: LockNo, s: Option<SiteNo>) -> Event {
    match op {
        Op::Acq => Event::Acquire {
            t,
            l,
            m: Mode::Exclusive,
            how: How::Blocking,
            s,
            wait_ns: 0,
        },
        Op::Req => Event::Request {
            t,
            l,
            m: Mode::Exclusive,
            s,
            n: 1,
            short: None,
        },
        _ => Event::Release { t, l, hold_ns: 0 },
    }
}

/// The leading ASCII digits of `b`, 1 to `max` of them: their value, how many, and the rest;
/// `None` when there are none or more than `max` (so the value never overflows).
#[inline(always)]
fn lead_digits(b: &[u8], max: usize) -> Option<(u64, usize, &[u8])> {
    let mut n = 0u64;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if i == max {
            return None;
        }
        n = n * 10 + u64::from(d);
        i += 1;
    }
    (i > 0).then(|| (n, i, &b[i..]))
}

/// A number as `canonical_number` reads it, among the leading digits of `b` (see
/// [`lead_digits`]): no leading zero. Inlined into the fast paths (a call of its own was
/// about 40 instructions of each of their two numbers).
#[inline(always)]
fn lead_canonical(b: &[u8], max: usize) -> Option<(u64, &[u8])> {
    let (n, len, rest) = lead_digits(b, max)?;
    (len == 1 || b[0] != b'0').then_some((n, rest))
}

/// The lines at the start of `data`, one after another, up to `room` of them, each as
/// [`usual_in_window`], else [`translate_at`], else [`translate_plain_at`] reads it: the bytes
/// of the lines it took (each with its newline) and how many, `(0, 0)` when it took none. The
/// batch's room is reserved once, not checked at each event's push alone.
#[inline(always)]
fn translate_run(
    tr: &mut Translator,
    data: &[u8],
    out: &mut Vec<Event>,
    room: usize,
) -> (usize, u64) {
    out.reserve(room);
    let (mut rest, mut lines) = (data, 0);
    // While a window's worth of input remains (all but the end of a read): the usual line in
    // it, else the line as `translate_at` reads it.
    while let (true, Some(w)) = (lines < room as u64, rest.first_chunk::<WINDOW>()) {
        let len = match usual_in_window(w) {
            Some(line) => translate_usual(tr, &line, out),
            None => match translate_at(tr, rest, out).or_else(|| translate_plain_at(tr, rest, out))
            {
                Some(len) => len,
                None => return (data.len() - rest.len(), lines),
            },
        };
        rest = rest.get(len + 1..).unwrap_or_default();
        lines += 1;
    }
    while lines < room as u64 {
        let Some(len) = translate_at(tr, rest, out).or_else(|| translate_plain_at(tr, rest, out))
        else {
            break;
        };
        rest = rest.get(len + 1..).unwrap_or_default();
        lines += 1;
    }
    (data.len() - rest.len(), lines)
}

/// The bytes [`usual_in_window`] reads a line in: the longest line it takes,
/// `T9999999|acq(L999999)|99999\n` (28 bytes), and the word read past its last number, fit.
const WINDOW: usize = 40;

/// A line of the usual shape, `T<t>|acq(L<l>)|<s>` or `T<t>|rel(L<l>)|<s>` (the location
/// optional), as [`usual_in_window`] read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Usual {
    /// The thread's number, `T<t>`.
    t: u64,
    /// [`Op::Acq`] or [`Op::Rel`].
    op: Op,
    /// The lock's number, `L<l>`.
    l: u64,
    /// The location's number, if the line has one.
    loc: Option<u64>,
    /// The index of the line's newline in the window.
    end: usize,
}

/// The leading ASCII digits of the 8 bytes of `word` (little-endian: the first byte lowest):
/// their value and how many, 1 to `max` (at most 7), or `None` for none or more than `max`.
/// Without a branch per digit: the digits are found by a mask of the bytes that are not ASCII
/// digits, and their value is summed in three multiplications of pairs, fours and eights (as in
/// Lemire's "fast number parsing").
#[inline(always)]
fn word_digits(word: u64, max: usize) -> Option<(u64, usize)> {
    const LOW: u64 = 0x0f0f_0f0f_0f0f_0f0f;
    // Digit bytes become 0 to 9; every other byte has a bit of its high nibble set, itself or
    // after adding 6 (10 to 15 carry into it). A byte that carries out of itself (0xfa and
    // above after the xor) is no digit, and the carry only changes the bytes after it.
    let x = word ^ 0x3030_3030_3030_3030;
    let not_digit = (x | x.wrapping_add(0x0606_0606_0606_0606)) & !LOW;
    let len = (not_digit.trailing_zeros() / 8) as usize;
    if len.wrapping_sub(1) >= max {
        return None;
    }
    // The digits at the top of the word, zeros (leading zeros) below them.
    let v = (x << (64 - 8 * len)) & LOW;
    let v = v.wrapping_mul(10 << 8 | 1) >> 8;
    let v = (v & 0x00ff_00ff_00ff_00ff).wrapping_mul(100 << 16 | 1) >> 16;
    let v = (v & 0x0000_ffff_0000_ffff).wrapping_mul(10_000 << 32 | 1) >> 32;
    Some((v, len))
}

/// Byte `i` of `w`; `i` is below 32 (see [`word_at`]).
#[inline(always)]
fn byte(w: &[u8; WINDOW], i: usize) -> u8 {
    w[i & 31]
}

/// The 8 bytes of `w` from `i` as a little-endian word; `i` is below 32, as every index that
/// [`usual_in_window`] reads at is (29 at most, past the longest line it takes).
#[inline(always)]
fn word_at(w: &[u8; WINDOW], i: usize) -> u64 {
    // The mask changes no index used and spares the bounds test.
    let i = i & 31;
    let mut b = [0; 8];
    b.copy_from_slice(&w[i..i + 8]);
    u64::from_le_bytes(b)
}

/// The usual line at the start of a window of the unread input, `T<t>|acq(L<l>)|<s>` or
/// `T<t>|rel(L<l>)|<s>` (the location optional) ended by a `\n` inside the window, read a word
/// at a time: the operation matched as one word, the lock's and the location's numbers each
/// found and valued without a branch per digit. `None` for any other line, which
/// [`translate_at`] (or [`translate_plain_at`], or the general path) then reads as before: a
/// `\r\n`, a bare lock number, `req`, a memory access, a leading zero, a number of more digits
/// than here (7 for the thread, 6 for the lock, 5 for the location) or at or over its limit
/// ([`SMALL_LOCKS`], [`SMALL_SITES`]), or a line whose newline is not in the window. What it
/// takes, [`translate_at`] takes too, ended at the same newline with the same numbers (the
/// property test `usual_in_window_reads_the_line_as_translate_at`).
#[inline(always)]
fn usual_in_window(w: &[u8; WINDOW]) -> Option<Usual> {
    /// `s` as the low bytes of a word.
    const fn word(s: &[u8]) -> u64 {
        let mut v = 0;
        let mut i = s.len();
        while i > 0 {
            i -= 1;
            v = v << 8 | s[i] as u64;
        }
        v
    }
    /// The low six bytes of a word.
    const SIX: u64 = (1 << 48) - 1;
    if w[0] != b'T' {
        return None;
    }
    // The thread's number, of a digit or two as a rule: digit by digit (a word's valuation
    // costs what four digits do).
    let (mut t, mut i) = (0, 1);
    loop {
        let d = byte(w, i).wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        t = t * 10 + u64::from(d);
        i += 1;
        // Eight digits: not the usual line.
        if i == 9 {
            return None;
        }
    }
    // No digit, or a leading zero (`T0` itself is canonical).
    if i == 1 || (i > 2 && w[1] == b'0') {
        return None;
    }
    let op = match word_at(w, i) & SIX {
        x if x == word(b"|acq(L") => Op::Acq,
        x if x == word(b"|rel(L") => Op::Rel,
        _ => return None,
    };
    let i = i + 6;
    let digits = word_at(w, i);
    let (l, len) = word_digits(digits, 6)?;
    // Canonical: one digit, or no leading zero; below the limit of the small locks.
    if (len > 1 && digits & 0xff == u64::from(b'0')) || l >= SMALL_LOCKS {
        return None;
    }
    let i = i + len;
    if byte(w, i) != b')' {
        return None;
    }
    let (loc, end) = match byte(w, i + 1) {
        b'\n' => (None, i + 1),
        b'|' => {
            let digits = word_at(w, i + 2);
            let (s, len) = word_digits(digits, 5)?;
            if (len > 1 && digits & 0xff == u64::from(b'0')) || s >= SMALL_SITES {
                return None;
            }
            let end = i + 2 + len;
            if byte(w, end) != b'\n' {
                return None;
            }
            (Some(s), end)
        }
        _ => return None,
    };
    Some(Usual { t, op, l, loc, end })
}

/// Queues the events of a line [`usual_in_window`] read, as [`translate_at`] queues them (the
/// same look-ups in the same order, the location of a release read but unused): the index of
/// its newline.
#[inline(always)]
fn translate_usual(tr: &mut Translator, line: &Usual, out: &mut Vec<Event>) -> usize {
    let t = tr.thread_num(line.t, out);
    let l = tr.lock_num(line.l, out);
    let s = match line.op {
        Op::Rel => None,
        _ => line.loc.map(|s| tr.site_num(s, out)),
    };
    out.push(lock_event(line.op, t, l, s));
    line.end
}

/// [`translate_common`] of the line at the start of `data` (the unread input, see
/// [`Lines::next_with`]), whose end is where the line's last number ends, when a `\n` or a
/// `\r\n` follows it there: the index of that `\n`, or `None`, having queued nothing, for any
/// other line (of another shape, or not whole in the buffer), which [`translate_plain_at`] or
/// [`Lines::next_line`] then reads as before. The line it takes is the one `next_line` would
/// return, and it is read exactly as `translate_common` reads it (the same checks on the same
/// bytes, declarations in the same order). On the planted trace the search for the newline
/// (`memchr` on a line of about 17 bytes) and the line's slice were about 100 instructions of
/// the 375 per line.
#[inline(always)]
fn translate_at(tr: &mut Translator, data: &[u8], out: &mut Vec<Event>) -> Option<usize> {
    let [b'T', rest @ ..] = data else {
        return None;
    };
    let (t, _, rest) = lead_digits(rest, 9)?;
    let (op, rest) = match rest {
        [b'|', b'a', b'c', b'q', b'(', r @ ..] => (Op::Acq, r),
        [b'|', b'r', b'e', b'l', b'(', r @ ..] => (Op::Rel, r),
        [b'|', b'r', b'e', b'q', b'(', r @ ..] => (Op::Req, r),
        [b'|', b'r' | b'w', b'(', r @ ..] => {
            let rest = memory_access_rest(r, true)?;
            let len = data.len() - rest.len() + usize::from(rest[0] == b'\r');
            tr.thread_num(t, out);
            return Some(len);
        }
        _ => return None,
    };
    let (bare, rest) = match rest {
        [b'L', r @ ..] => (false, r),
        _ => (true, rest),
    };
    let (l, rest) = match lead_canonical(rest, 6)? {
        (l, [b')', rest @ ..]) if l < SMALL_LOCKS => (l, rest),
        _ => return None,
    };
    let (loc, rest) = match rest {
        [b'\n', ..] | [b'\r', b'\n', ..] => (None, rest),
        [b'|', r @ ..] => match lead_canonical(r, 5)? {
            (s, rest @ ([b'\n', ..] | [b'\r', b'\n', ..])) if s < SMALL_SITES => (Some(s), rest),
            _ => return None,
        },
        _ => return None,
    };
    // The index of the newline, past a `\r` (which `next_line` drops).
    let len = data.len() - rest.len() + usize::from(rest[0] == b'\r');
    let t = tr.thread_num(t, out);
    let l = if bare {
        tr.bare_lock_num(l, out)
    } else {
        tr.lock_num(l, out)
    };
    let s = match op {
        Op::Rel => None,
        _ => loc.map(|s| tr.site_num(s, out)),
    };
    out.push(lock_event(op, t, l, s));
    Some(len)
}

/// Translates a line of the one shape that traces at scale are made of, `T<n>|acq(L<n>)|<n>`
/// (or `rel`, `req`, with or without the location), straight from its bytes, and returns
/// `true`; `false`, having queued nothing, for any other line, which [`parse_plain`] and
/// [`translate`] then read as before. What it reads, it reads as they do (the thread by
/// `parse_digits`, the lock and the location by `canonical_number` below `SMALL_LOCKS` and
/// `SMALL_SITES`, declared in the same order), without the token slices, the operation's
/// name match and the three look-ups by token that cost about 400 instructions per line.
#[inline]
fn translate_common(tr: &mut Translator, b: &[u8], out: &mut Vec<Event>) -> bool {
    let [b'T', rest @ ..] = b else {
        return false;
    };
    let Some((t, _, rest)) = lead_digits(rest, 9) else {
        return false;
    };
    let (op, rest) = match rest {
        [b'|', b'a', b'c', b'q', b'(', r @ ..] => (Op::Acq, r),
        [b'|', b'r', b'e', b'l', b'(', r @ ..] => (Op::Rel, r),
        [b'|', b'r', b'e', b'q', b'(', r @ ..] => (Op::Req, r),
        [b'|', b'r' | b'w', b'(', r @ ..] => {
            if memory_access_rest(r, false).is_none() {
                return false;
            }
            tr.thread_num(t, out);
            return true;
        }
        _ => return false,
    };
    let (bare, rest) = match rest {
        [b'L', r @ ..] => (false, r),
        _ => (true, rest),
    };
    let Some((l, [b')', rest @ ..])) = lead_canonical(rest, 6) else {
        return false;
    };
    if l >= SMALL_LOCKS {
        return false;
    }
    let loc = match rest {
        [] => None,
        [b'|', r @ ..] => match lead_canonical(r, 5) {
            Some((s, [])) if s < SMALL_SITES => Some(s),
            _ => return false,
        },
        _ => return false,
    };
    let t = tr.thread_num(t, out);
    let l = if bare {
        tr.bare_lock_num(l, out)
    } else {
        tr.lock_num(l, out)
    };
    let s = match op {
        Op::Rel => None,
        _ => loc.map(|s| tr.site_num(s, out)),
    };
    out.push(lock_event(op, t, l, s));
    true
}

/// The rest of a memory access line (`r` or `w`, which the lock analysis ignores but for
/// declaring its thread) after its `(`: digits, `)`, then the end, or `|` and a location of
/// digits, then the end. `at_newline`: the end is a `\n` or a `\r\n` (left in the returned
/// rest, as [`translate_at`] leaves it), else the end of `b`. `None` for any other shape, which the
/// general path reads (and refuses where it must). The research traces are mostly such lines.
#[inline(always)]
fn memory_access_rest(b: &[u8], at_newline: bool) -> Option<&[u8]> {
    let digits = |b: &[u8]| b.iter().take_while(|c| c.is_ascii_digit()).count();
    let n = digits(b);
    let [b')', rest @ ..] = b.get(n..)? else {
        return None;
    };
    if n == 0 {
        return None;
    }
    let rest = match rest {
        [b'|', r @ ..] => {
            let m = digits(r);
            if m == 0 {
                return None;
            }
            &r[m..]
        }
        _ => rest,
    };
    match (at_newline, rest) {
        (true, [b'\n', ..] | [b'\r', b'\n', ..]) | (false, []) => Some(rest),
        _ => None,
    }
}

/// Queues the events of one line.
#[inline]
fn translate(tr: &mut Translator, p: &StdLine<'_>, out: &mut Vec<Event>) {
    let t = tr.thread_token(p.thread, out);
    // `needs_arg` operations always have one after parsing.
    let arg = p.arg.unwrap_or(b"");
    match p.op {
        Op::Acq | Op::Req => {
            let l = tr.lock_name(arg, out);
            let s = p.loc.map(|loc| tr.site_name(loc, out));
            out.push(lock_event(p.op, t, l, s));
        }
        Op::Rel => {
            let l = tr.lock_name(arg, out);
            out.push(lock_event(p.op, t, l, None));
        }
        Op::Fork | Op::Join => {
            let child = tr.thread_token(arg, out);
            out.push(if p.op == Op::Fork {
                Event::Fork { t, child }
            } else {
                Event::Join {
                    t,
                    child,
                    scope: false,
                }
            });
        }
        Op::Read | Op::Write | Op::Begin | Op::End | Op::Branch => {}
    }
}

/// Whether `b` may appear in a token on the fast path: printable ASCII other than `|`, `(`, `)`.
/// Anything else (blanks, control bytes, non-ASCII) sends the line to [`parse`], which trims,
/// validates UTF-8 and reports errors with their column.
#[inline]
fn plain(b: u8) -> bool {
    b > b' ' && b < 0x7f && b != b'|' && b != b'(' && b != b')'
}

/// The first index from `i` on where `b` holds a byte that is not [`plain`], or the length of
/// `b`: eight bytes at a time while eight remain (a token of the usual spellings,
/// `Thread-12`, `0x7f3a2c0`, `Foo.java:123`, is one or two words), then byte by byte.
#[inline(always)]
fn plain_run(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of `v` that is zero, exact up to the first such byte (a borrow
    // only marks bytes above a zero one), which is all that is used.
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    while let Some(w) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(w.try_into().unwrap_or_default());
        // Below `!` (blanks, control bytes): exact up to the first, as `zero`.
        let low = x.wrapping_sub(ONES * 0x21) & !x & HIGH;
        // 0x7f and above: the high bit, or seven low bits that carry into it.
        let high = (x | ((x & !HIGH) + ONES)) & HIGH;
        let bar = zero(x ^ (ONES * u64::from(b'|')));
        // `(` and `)` differ in the low bit only.
        let paren = zero((x ^ (ONES * u64::from(b'('))) & !ONES);
        let stop = low | high | bar | paren;
        if stop != 0 {
            return i + (stop.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && plain(b[i]) {
        i += 1;
    }
    i
}

/// The fast path of [`parse`]: a line of plain tokens without blanks, `T1|acq(L3)|42`, parsed at
/// the byte level. `None` for anything else, which [`parse`] then accepts or rejects exactly as
/// before (so both paths accept the same lines with the same meaning).
#[inline]
fn parse_plain(b: &[u8]) -> Option<StdLine<'_>> {
    parse_plain_in(b, false).map(|(line, _)| line)
}

/// Where the line of `b` ends at `i`: with `at_newline`, at a `\n` or a `\r\n` there (the index
/// of the `\n`); else at the end of `b` (its length).
#[inline(always)]
fn line_end(b: &[u8], i: usize, at_newline: bool) -> Option<usize> {
    if !at_newline {
        return (i == b.len()).then_some(i);
    }
    match b.get(i..) {
        Some([b'\n', ..]) => Some(i),
        Some([b'\r', b'\n', ..]) => Some(i + 1),
        _ => None,
    }
}

/// [`parse_plain`] of a whole `b` (`at_newline` false), or of the line at the start of `b`, the
/// unread input, ended by a `\n` or a `\r\n` (`at_newline` true, see [`Lines::next_with`]): the
/// line (without its `\r`), and the index of its `\n` (the length of `b` when not
/// `at_newline`). Both read the same line alike: a `\r` is no plain byte, so a token stops at
/// it, and [`Lines::next_line`] drops one `\r` before the `\n`, as this stops there.
#[inline(always)]
fn parse_plain_in(b: &[u8], at_newline: bool) -> Option<(StdLine<'_>, usize)> {
    let n = b.len();
    let mut i = plain_run(b, 0);
    if i == 0 || i == n || b[i] != b'|' {
        return None;
    }
    let thread = &b[..i];
    i += 1;
    // The two usual operations without the run's scan and the match on its bytes.
    let op = match b.get(i..) {
        Some([b'a', b'c', b'q', c, ..]) if !c.is_ascii_lowercase() => {
            i += 3;
            Op::Acq
        }
        Some([b'r', b'e', b'l', c, ..]) if !c.is_ascii_lowercase() => {
            i += 3;
            Op::Rel
        }
        _ => {
            let os = i;
            while i < n && b[i].is_ascii_lowercase() {
                i += 1;
            }
            Op::from_bytes(&b[os..i])?
        }
    };
    let mut arg = None;
    if i < n && b[i] == b'(' {
        i += 1;
        let start = i;
        i = plain_run(b, i);
        if i == n || b[i] != b')' {
            return None;
        }
        if i > start {
            arg = Some(&b[start..i]);
        }
        i += 1;
    }
    if arg.is_none() && op.needs_arg() {
        return None;
    }
    let (loc, end) = if let Some(end) = line_end(b, i, at_newline) {
        (None, end)
    } else if b.get(i) == Some(&b'|') {
        i += 1;
        let start = i;
        i = plain_run(b, i);
        if i == start {
            return None;
        }
        (Some(&b[start..i]), line_end(b, i, at_newline)?)
    } else {
        return None;
    };
    Some((
        StdLine {
            thread,
            op,
            arg,
            loc,
        },
        end,
    ))
}

/// Reads the line at the start of `data` (the unread input, see [`Lines::next_with`]) as
/// [`parse_plain`] and [`translate`] read it once [`Lines::next_line`] has cut it out: the index
/// of its newline, or `None`, having queued nothing, for a line `parse_plain` declines or one
/// not whole in the buffer. Any spelling of plain tokens (`Thread-1|acq(0x7f3a2c)|Foo.java:12`,
/// `t1|acq(l3)`, `\r\n` line ends) takes this path, without the search for the line's end.
/// Out of line: inlined, it cost the usual lines' path in `fill` 24 instructions each.
#[inline(never)]
fn translate_plain_at(tr: &mut Translator, data: &[u8], out: &mut Vec<Event>) -> Option<usize> {
    let (line, end) = parse_plain_in(data, true)?;
    translate(tr, &line, out);
    Some(end)
}

/// Parses `thread|op(arg)|location` (the location may be missing: `thread|op(arg)`).
fn parse(text: &str) -> Result<StdLine<'_>, Problem> {
    let text = text.trim_end();
    // Fields with their 0-based byte offsets.
    let mut fields: [(usize, &str); 3] = [(0, ""); 3];
    let mut count = 0;
    let mut start = 0;
    for (i, piece) in text.split('|').enumerate() {
        if i == 3 {
            return Err((
                start as u64,
                "unexpected `|`: a line has three fields, `thread|op(arg)|location`".to_owned(),
            ));
        }
        fields[i] = (start, piece);
        count = i + 1;
        start += piece.len() + 1;
    }
    if count < 2 {
        return Err((
            text.len() as u64 + 1,
            "expected `|` after the thread: a line is `thread|op(arg)|location`, as in `T1|acq(L3)|42`"
                .to_owned(),
        ));
    }
    let (tcol, thread) = trimmed(fields[0]);
    token(thread, tcol, "thread")?;

    let (ocol, op_field) = trimmed(fields[1]);
    if op_field.is_empty() {
        return Err((ocol, format!("missing operation (one of {OPS})")));
    }
    let (op_name, arg) = match op_field.find('(') {
        Some(open) => {
            let Some(inner) = op_field[open + 1..].strip_suffix(')') else {
                return Err((
                    ocol + op_field.len() as u64,
                    "expected `)` at the end of the operation".to_owned(),
                ));
            };
            let (acol, arg) = trimmed((ocol as usize - 1 + open + 1, inner));
            (&op_field[..open], Some((acol, arg)))
        }
        None => (op_field, None),
    };
    let Some(op) = Op::from_name(op_name) else {
        let shown: String = op_name.chars().take(40).collect();
        return Err((
            ocol,
            format!("unknown operation `{shown}` (expected one of {OPS})"),
        ));
    };
    let arg = match arg {
        Some((acol, a)) if !a.is_empty() => {
            token(a, acol, "argument")?;
            Some(a)
        }
        Some((acol, _)) if op.needs_arg() => {
            return Err((
                acol,
                format!(
                    "`{op_name}` needs an argument, as in `{op_name}({})`",
                    op.example_arg()
                ),
            ));
        }
        None if op.needs_arg() => {
            return Err((
                ocol + op_field.len() as u64,
                format!(
                    "`{op_name}` needs an argument, as in `{op_name}({})`",
                    op.example_arg()
                ),
            ));
        }
        _ => None,
    };
    let loc = if count == 3 {
        let (lcol, loc) = trimmed(fields[2]);
        token(loc, lcol, "location")?;
        Some(loc)
    } else {
        None
    };
    Ok(StdLine {
        thread: thread.as_bytes(),
        op,
        arg: arg.map(str::as_bytes),
        loc: loc.map(str::as_bytes),
    })
}

/// Trims a field, returning the 1-based column where its content starts.
fn trimmed((offset, field): (usize, &str)) -> (u64, &str) {
    let start = field.len() - field.trim_start().len();
    ((offset + start) as u64 + 1, field.trim())
}

/// Checks a thread, lock or location token: non-empty, no blanks or parentheses.
fn token(tok: &str, col: u64, what: &str) -> Result<(), Problem> {
    if tok.is_empty() {
        return Err((col, format!("missing {what}")));
    }
    match tok
        .char_indices()
        .find(|&(_, c)| c.is_whitespace() || c == '(' || c == ')')
    {
        Some((i, c)) => Err((
            col + i as u64,
            format!("unexpected {c:?} in {what} `{tok}`"),
        )),
        None => Ok(()),
    }
}

/// [`parse_plain`]'s reading of a line, for tests.
#[cfg(test)]
pub(super) fn parse_plain_for_tests(b: &[u8]) -> Option<String> {
    parse_plain(b).map(|p| format!("{p:?}"))
}

/// [`parse`]'s reading of a line, for tests.
#[cfg(test)]
pub(super) fn parse_for_tests(text: &str) -> Option<String> {
    parse(text).ok().map(|p| format!("{p:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What `translate_common` made of a line: where the line ends in the data, whether it took
    /// the line, and the events it queued.
    type Reference = Option<(usize, bool, Vec<Event>)>;

    /// The verdicts of a fast path and of its reference on `data` agree: a line taken by the
    /// fast path ends where the reference's does and reads alike, and a line the fast path
    /// declines queues nothing and is one the reference declines too (`kind` names the lines
    /// it must take).
    fn agree(
        data: &str,
        (at, out_a, reference): (Option<usize>, Vec<Event>, Reference),
        kind: &str,
    ) -> Result<(), TestCaseError> {
        match (at, reference) {
            (Some(len), Some((end, taken, out_b))) => {
                prop_assert_eq!(len, end, "{:?}", data);
                prop_assert!(taken, "{:?}", data);
                prop_assert_eq!(out_a, out_b, "{:?}", data);
            }
            (Some(_), None) => prop_assert!(false, "took a line without its newline: {:?}", data),
            (None, reference) => {
                prop_assert!(out_a.is_empty(), "{:?}", data);
                if let Some((_, taken, _)) = reference {
                    prop_assert!(!taken, "declined a {} line: {:?}", kind, data);
                }
            }
        }
        Ok(())
    }

    /// A translator that has seen the lines of `seen` (their events dropped).
    fn warmed(seen: &[u8]) -> Translator {
        let mut tr = Translator::default();
        let mut sink = Vec::new();
        for line in seen.split(|&b| b == b'\n') {
            translate_common(&mut tr, line, &mut sink);
        }
        tr
    }

    /// What [`translate_at`] makes of `data`, and what [`translate_common`] makes of the line
    /// [`Lines::next_line`] would return at its start (up to the first newline, without a
    /// `\r` before it), each with a translator of its own that has seen `seen` first.
    fn both(seen: &[u8], data: &[u8]) -> (Option<usize>, Vec<Event>, Reference) {
        let (mut a, mut b) = (warmed(seen), warmed(seen));
        let mut out_a = Vec::new();
        let at = translate_at(&mut a, data, &mut out_a);
        let reference = data.iter().position(|&c| c == b'\n').map(|end| {
            let mut line = &data[..end];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            let mut out_b = Vec::new();
            let taken = translate_common(&mut b, line, &mut out_b);
            (end, taken, out_b)
        });
        (at, out_a, reference)
    }

    /// Up to three lines read before the input under test (their names warm the translator):
    /// the usual shape, numbers without the `L`, and the short mode names.
    fn usual_seen() -> impl Strategy<Value = Vec<&'static str>> {
        proptest::collection::vec(
            prop_oneof![
                Just("T1|acq(L3)|42"),
                Just("T12|rel(L42)"),
                Just("T7|req(L0)|0"),
                Just("T1|acq(3)|42"),
                Just("T2|r(9)|1"),
            ],
            0..3,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

        /// The line `translate_at` takes in the buffer is the whole line, ended by its newline,
        /// and is read as `translate_common` reads it (the same events, declarations first);
        /// it takes every line `translate_common` takes that does not end with `\r`, and
        /// queues nothing for a line it declines.
        #[test]
        fn translate_at_reads_the_line_as_translate_common(
            pieces in prop_oneof![
                // Lines near the usual shape, each part right or slightly off.
                (
                    prop_oneof![Just("T1"), Just("T12"), Just("T"), Just("x"), Just("T01"), Just("T1234567890")],
                    prop_oneof![Just("|acq(L"), Just("|rel(L"), Just("|req(L"), Just("|fork(T"), Just("|acq("), Just("|rel("), Just("|r("), Just("|w("), Just("|r(L"), Just("|w(x")],
                    prop_oneof![Just("3"), Just("0"), Just("03"), Just("262143"), Just("262144"), Just("9999999")],
                    prop_oneof![Just(")"), Just(""), Just(") ")],
                    prop_oneof![Just(""), Just("|42"), Just("|0"), Just("|042"), Just("|32767"), Just("|32768"), Just("|"), Just("|x")],
                    prop_oneof![Just("\n"), Just("\r\n"), Just(""), Just(" \n"), Just("\nT1|rel(L3)\n"), Just("\r")],
                )
                    .prop_map(|(a, b, c, d, e, f)| vec![a, b, c, d, e, f]),
                // Anything made of the same bytes.
                proptest::collection::vec(prop_oneof![
                    Just("T"), Just("T1"), Just("T12"), Just("7"), Just("|"), Just("acq(L"),
                    Just("rel(L"), Just("req(L"), Just("fork(T2)"), Just("("), Just(")"), Just("L3"),
                    Just("0"), Just("42"), Just("262143"), Just("262144"), Just("32767"),
                    Just("32768"), Just("999999"), Just("\r"), Just("\n"), Just(" "), Just("x"),
                    Just("acq("), Just("rel("), Just("r("), Just("w("), Just("4294967298"),
                ], 0..12),
            ],
            seen in usual_seen(),
        ) {
            let data = pieces.concat();
            let seen = seen.join("\n");
            agree(&data, both(seen.as_bytes(), data.as_bytes()), "usual")?;
        }
    }

    /// What [`translate_plain_at`] makes of `data`, and what [`parse_plain`] and [`translate`]
    /// make of the line [`Lines::next_line`] would return at its start (up to the first
    /// newline, without one `\r` before it): whether they took it, and the events.
    fn plain_both(seen: &[u8], data: &[u8]) -> (Option<usize>, Vec<Event>, Reference) {
        let warm = |tr: &mut Translator| {
            let mut sink = Vec::new();
            for line in seen.split(|&b| b == b'\n') {
                if let Some(p) = parse_plain(line) {
                    translate(tr, &p, &mut sink);
                }
            }
        };
        let (mut a, mut b) = (Translator::default(), Translator::default());
        warm(&mut a);
        warm(&mut b);
        let mut out_a = Vec::new();
        let at = translate_plain_at(&mut a, data, &mut out_a);
        let reference = data.iter().position(|&c| c == b'\n').map(|end| {
            let mut line = &data[..end];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            let mut out_b = Vec::new();
            let parsed = parse_plain(line);
            let taken = parsed.is_some();
            if let Some(p) = parsed {
                translate(&mut b, &p, &mut out_b);
            }
            (end, taken, out_b)
        });
        (at, out_a, reference)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

        /// `translate_plain_at` takes exactly the lines `parse_plain` takes once `next_line` has
        /// cut them out, ends them at their newline, and reads them alike (events and names).
        #[test]
        fn translate_plain_at_reads_the_line_as_next_line_and_parse_plain(
            pieces in proptest::collection::vec(prop_oneof![
                Just("T1"), Just("t2"), Just("Thread-12"), Just("7"), Just("|"), Just("acq"),
                Just("rel"), Just("req"), Just("acqx"), Just("fork"), Just("join"), Just("begin"),
                Just("r"), Just("("), Just(")"), Just("L3"), Just("l3"), Just("lock_3"),
                Just("0x7f3a2c40"), Just("Foo.java:12"), Just("src/a.rs:12:5"), Just(" "),
                Just("42"), Just("\r"), Just("\n"), Just("\r\n"), Just("\t"), Just("\u{e9}"),
                Just("\x7f"), Just("x"), Just("a-rather-long-name-beyond-sixteen-bytes"),
            ], 0..14),
            seen in proptest::collection::vec(prop_oneof![
                Just("T1|acq(L3)|42"), Just("Thread-12|rel(lock_3)"), Just("t2|acq(l3)|Foo.java:12"),
            ], 0..3),
        ) {
            let data = pieces.concat();
            let seen = seen.join("\n");
            agree(&data, plain_both(seen.as_bytes(), data.as_bytes()), "plain")?;
        }

        /// `plain_run` stops where a byte-by-byte scan with [`plain`] stops.
        #[test]
        fn plain_run_stops_at_the_first_byte_not_plain(
            bytes in proptest::collection::vec(prop_oneof![
                Just(b'a'), Just(b'0'), Just(b'|'), Just(b'('), Just(b')'), Just(b'*'), Just(b'\''),
                Just(b' '), Just(b'!'), Just(b'~'), Just(0x7f), Just(0x80), Just(0xff), Just(0),
                Just(b'\r'), Just(b'\n'), any::<u8>(),
            ], 0..40),
            from in 0usize..8,
        ) {
            let from = from.min(bytes.len());
            let mut want = from;
            while want < bytes.len() && plain(bytes[want]) {
                want += 1;
            }
            prop_assert_eq!(plain_run(&bytes, from), want, "{:?}", bytes);
        }
    }

    /// What [`usual_in_window`] and [`translate_usual`] make of `data` padded to a window, and
    /// what [`translate_at`] makes of it, each with a translator of its own that has seen
    /// `seen` first: where each ends the line, and the events.
    fn window_both(seen: &[u8], data: &[u8]) -> [(Option<usize>, Vec<Event>); 2] {
        let (mut a, mut b) = (warmed(seen), warmed(seen));
        let mut padded = data.to_vec();
        padded.resize(padded.len().max(WINDOW), b'x');
        let w: &[u8; WINDOW] = padded.first_chunk().expect("a window");
        let mut out_a = Vec::new();
        let at_a = usual_in_window(w).map(|line| translate_usual(&mut a, &line, &mut out_a));
        let mut out_b = Vec::new();
        let at_b = translate_at(&mut b, &padded, &mut out_b);
        [(at_a, out_a), (at_b, out_b)]
    }

    /// The lines of `data` up to `room` of them, as the decoder read them before the runs:
    /// each line cut at its newline (one `\r` before it dropped), read by [`parse_plain`] and
    /// [`translate`], up to the first it declines: the bytes and lines taken, and the events.
    fn lines_one_by_one(data: &[u8], room: usize) -> (usize, u64, Vec<Event>) {
        let mut tr = Translator::default();
        let (mut at, mut lines, mut out) = (0, 0, Vec::new());
        while (lines as usize) < room {
            let Some(end) = data[at..].iter().position(|&c| c == b'\n') else {
                break;
            };
            let mut line = &data[at..at + end];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            let Some(p) = parse_plain(line) else {
                break;
            };
            translate(&mut tr, &p, &mut out);
            at += end + 1;
            lines += 1;
        }
        (at, lines, out)
    }

    /// The line at the start of `data`, if it is of the shape [`usual_in_window`] must take,
    /// told by string operations: `T<t>|acq(L<l>)` or `T<t>|rel(L<l>)`, then maybe `|<s>`, then
    /// `\n`; each number canonical (no leading zero), of at most 7, 6 and 5 digits, the lock
    /// below [`SMALL_LOCKS`] and the location below [`SMALL_SITES`]. The index of its newline.
    fn usual_reference(data: &[u8]) -> Option<usize> {
        let end = data.iter().position(|&c| c == b'\n')?;
        let line = std::str::from_utf8(&data[..end]).ok()?;
        let canonical = |s: &str, max: usize, limit: u64| {
            let digits = !s.is_empty() && s.len() <= max && s.bytes().all(|c| c.is_ascii_digit());
            (digits && (s.len() == 1 || !s.starts_with('0')))
                .then(|| s.parse::<u64>().ok())
                .flatten()
                .filter(|&n| n < limit)
        };
        let (t, rest) = line.strip_prefix('T')?.split_once('|')?;
        canonical(t, 7, u64::MAX)?;
        let rest = rest
            .strip_prefix("acq(L")
            .or_else(|| rest.strip_prefix("rel(L"))?;
        let (l, rest) = rest.split_once(')')?;
        canonical(l, 6, SMALL_LOCKS)?;
        if !rest.is_empty() {
            canonical(rest.strip_prefix('|')?, 5, SMALL_SITES)?;
        }
        Some(end)
    }

    /// [`usual_in_window`] takes the line at the start of `data` exactly when
    /// [`usual_reference`] says it is of the usual shape, and then reads it as [`translate_at`]
    /// does (the same newline, the same events, declarations first); it queues nothing for a
    /// line it declines.
    fn window_agrees(seen: &[u8], data: &[u8]) -> Result<(), TestCaseError> {
        let shown = String::from_utf8_lossy(data);
        let [(at_a, out_a), (at_b, out_b)] = window_both(seen, data);
        prop_assert_eq!(at_a, usual_reference(data), "{:?}", shown);
        if at_a.is_some() {
            prop_assert_eq!(at_a, at_b, "{:?}", shown);
            prop_assert_eq!(out_a, out_b, "{:?}", shown);
        } else {
            prop_assert!(out_a.is_empty(), "{:?}", shown);
        }
        Ok(())
    }

    /// A usual line (`acq` or `rel`, with or without a location) with numbers of every length
    /// and around each limit, then maybe mutated: a byte replaced, inserted or removed, or the
    /// line cut; then more input or none.
    fn mutated_line() -> impl Strategy<Value = Vec<u8>> {
        let t = prop_oneof![
            0u64..10,
            0u64..1000,
            999_990u64..1_000_010,
            9_999_990u64..10_000_010
        ];
        let l = prop_oneof![
            0u64..10,
            0u64..1000,
            262_130u64..262_150,
            999_990u64..1_000_010
        ];
        let s = prop::option::of(prop_oneof![
            0u64..10,
            0u64..1000,
            32_760u64..32_775,
            99_990u64..100_010
        ]);
        let byte = prop_oneof![
            Just(b'0'),
            Just(b'1'),
            Just(b'9'),
            Just(b'/'),
            Just(b':'),
            Just(b'\n'),
            Just(b'\r'),
            Just(b'|'),
            Just(b'('),
            Just(b')'),
            Just(b'L'),
            Just(b'T'),
            Just(b' '),
            Just(0xff),
            any::<u8>(),
        ];
        let tail = prop_oneof![
            Just(""),
            Just("T1|rel(L3)\n"),
            Just("\n"),
            Just("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
        ];
        (
            t,
            any::<bool>(),
            l,
            s,
            0usize..5,
            any::<prop::sample::Index>(),
            byte,
            tail,
        )
            .prop_map(|(t, acq, l, s, kind, at, byte, tail)| {
                let op = if acq { "acq" } else { "rel" };
                let mut line = format!("T{t}|{op}(L{l})").into_bytes();
                if let Some(s) = s {
                    line.extend_from_slice(format!("|{s}").as_bytes());
                }
                line.push(b'\n');
                let i = at.index(line.len());
                match kind {
                    1 => line[i] = byte,
                    2 => line.insert(i, byte),
                    3 => {
                        line.remove(i);
                    }
                    4 => line.truncate(i),
                    _ => {}
                }
                line.extend_from_slice(tail.as_bytes());
                line
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

        /// A line `usual_in_window` takes, `translate_at` takes too, ended at the same newline
        /// and read alike (the same events, declarations first).
        #[test]
        fn usual_in_window_reads_the_line_as_translate_at(
            pieces in prop_oneof![
                (
                    prop_oneof![Just("T1"), Just("T12"), Just("T"), Just("x"), Just("T01"), Just("T1234567"), Just("T12345678"), Just("T0000000")],
                    prop_oneof![Just("|acq(L"), Just("|rel(L"), Just("|req(L"), Just("|fork(T"), Just("|acq("), Just("|rel("), Just("|r("), Just("|w("), Just("|r(L"), Just("|w(x"), Just("|acqL"), Just("|ac(")],
                    prop_oneof![Just("3"), Just("0"), Just("03"), Just("262143"), Just("262144"), Just("999999"), Just("1234567"), Just("12345678"), Just("")],
                    prop_oneof![Just(")"), Just(""), Just(") "), Just(")|"), Just("))")],
                    prop_oneof![Just(""), Just("|42"), Just("|0"), Just("|042"), Just("|32767"), Just("|32768"), Just("|99999"), Just("|1234567"), Just("|12345678"), Just("|"), Just("|x"), Just("|1|2")],
                    prop_oneof![Just("\n"), Just("\r\n"), Just(""), Just(" \n"), Just("\nT1|rel(L3)\n"), Just("\r"), Just("\r\r\n")],
                )
                    .prop_map(|(a, b, c, d, e, f)| vec![a, b, c, d, e, f]),
                proptest::collection::vec(prop_oneof![
                    Just("T"), Just("T1"), Just("T12"), Just("7"), Just("|"), Just("acq(L"),
                    Just("rel(L"), Just("req(L"), Just("("), Just(")"), Just("L3"), Just("0"),
                    Just("42"), Just("262143"), Just("262144"), Just("32767"), Just("32768"),
                    Just("1234567"), Just("12345678"), Just("\r"), Just("\n"), Just(" "),
                    Just("x"), Just("acq("), Just("r("), Just("w("), Just("/"), Just(":"),
                ], 0..14),
            ],
            seen in usual_seen(),
        ) {
            let data = pieces.concat();
            let seen = seen.join("\n");
            window_agrees(seen.as_bytes(), data.as_bytes())?;
        }

        /// The same on lines of the usual shape with numbers around the limits, mutated or not
        /// (a byte replaced, inserted or removed, the line cut), before other input.
        #[test]
        fn usual_in_window_reads_mutated_lines_as_translate_at(
            line in mutated_line(),
            seen in proptest::collection::vec(prop_oneof![
                Just("T1|acq(L3)|42"), Just("T12|rel(L42)"), Just("T0|acq(L0)|0"),
            ], 0..3),
        ) {
            window_agrees(seen.join("\n").as_bytes(), &line)?;
        }

        /// `word_digits` finds and values the leading digits of a word as a byte-by-byte scan
        /// does, whatever the bytes after them.
        #[test]
        fn word_digits_reads_the_leading_digits_as_a_byte_scan(
            bytes in proptest::array::uniform8(prop_oneof![
                4 => b'0'..=b'9', 1 => any::<u8>(), 1 => Just(b'/'), 1 => Just(b':'),
                1 => Just(0xff), 1 => Just(0xfa), 1 => Just(0x3a),
            ]),
            max in 1usize..=7,
        ) {
            let len = bytes.iter().take_while(|c| c.is_ascii_digit()).count();
            let want = (len >= 1 && len <= max).then(|| {
                let v = bytes[..len].iter().fold(0, |v, &c| v * 10 + u64::from(c - b'0'));
                (v, len)
            });
            prop_assert_eq!(word_digits(u64::from_le_bytes(bytes), max), want, "{:?}", bytes);
        }

        /// A run of lines is read as the lines one by one (cut at their newlines, then parsed
        /// and translated, the way the decoder read every line before the runs): the same
        /// lines taken, up to the same one, and the same events; wherever the window ends.
        #[test]
        fn translate_run_reads_the_lines_as_one_by_one(
            lines in proptest::collection::vec(prop_oneof![
                4 => (0u64..30, 0u64..400, 0u64..40_000, 0usize..4).prop_map(|(t, l, s, k)| {
                    let op = ["acq", "rel", "req", "acq"][k];
                    match k {
                        0 => format!("T{t}|{op}(L{l})|{s}"),
                        1 => format!("T{t}|{op}(L{l})"),
                        2 => format!("T{t}|{op}({l})|{s}\r"),
                        _ => format!("T{t}|r({l})|{s}"),
                    }
                }),
                1 => proptest::collection::vec(prop_oneof![
                    Just("T1"), Just("Thread-12"), Just("|"), Just("acq("), Just("rel("),
                    Just("fork(T2)"), Just("r("), Just("L3"), Just("lock_3"), Just("0"),
                    Just("007"), Just("262144"), Just("32768"), Just("12345678"), Just(")"),
                    Just("|Foo.java:12"), Just(" "), Just("\r"), Just("\u{e9}"), Just("x"),
                ], 1..9).prop_map(|p| p.concat()),
            ], 0..30),
            end in prop_oneof![Just(""), Just("\n"), Just("T1|acq(L1)|1")],
            room in 1usize..40,
        ) {
            let data = format!("{}{end}", lines.join("\n"));
            let mut tr = Translator::default();
            let mut out = Vec::new();
            let (at, taken) = translate_run(&mut tr, data.as_bytes(), &mut out, room);
            let (want_at, want_lines, want) = lines_one_by_one(data.as_bytes(), room);
            prop_assert_eq!((at, taken), (want_at, want_lines), "{:?}", data);
            prop_assert_eq!(out, want, "{:?}", data);
        }
    }

    #[test]
    fn usual_in_window_takes_the_usual_lines() {
        for (line, end) in [
            ("T1|acq(L3)|42\n", 13),
            ("T0|acq(L0)|0\n", 12),
            ("T12|rel(L262143)\n", 16),
            ("T1234567|acq(L999)|32767\n", 24),
            ("T9999999|rel(L262143)|32767\n", 27),
            ("T3|acq(L7)\nT3|rel(L7)\n", 10),
        ] {
            let [(at, _), (want, _)] = window_both(b"", line.as_bytes());
            assert_eq!(at, Some(end), "{line:?}");
            assert_eq!(want, Some(end), "{line:?}");
        }
        // Lines `translate_at` reads, or the general path rejects, but not this one.
        for line in [
            "T12345678|acq(L3)|4\n",
            "T01|acq(L3)|4\n",
            "T1|acq(L03)|4\n",
            "T1|acq(L262144)|4\n",
            "T1|acq(L1000000)|4\n",
            "T1|acq(L3)|32768\n",
            "T1|acq(L3)|100000\n",
            "T1|acq(L3)|04\n",
            "T1|acq(L3)|4\r\n",
            "T1|acq(L3)|4\r\r\n",
            "T1|acq(L3) \n",
            "T1|acq(L3)|\n",
            "T1|acq(3)|4\n",
            "T1|req(L3)|4\n",
            "T1|r(3)|4\n",
            "T1|w(3)\n",
            "T1|acq(L3)|4",
            "T1|acq(L3)|4|5\n",
            "T|acq(L3)|4\n",
        ] {
            let [(at, out), _] = window_both(b"", line.as_bytes());
            assert_eq!(at, None, "{line:?}");
            assert!(out.is_empty(), "{line:?}");
        }
    }

    /// `word_digits` at every count of leading digits, 0 to 8, followed by the bytes just below
    /// `0` and just above `9` (`/` and `:`, which a range test off by one would take), and by
    /// the bytes that carry when 6 is added (0xfa and above after the xor with `0`).
    #[test]
    fn word_digits_counts_and_values_0_to_8_digits() {
        for n in 0..=8usize {
            for after in [b'/', b':', b'x', b'\n', 0xca, 0xff, 0] {
                let mut bytes = [after; 8];
                for (k, b) in bytes.iter_mut().take(n).enumerate() {
                    *b = b"98765432"[k];
                }
                let value: u64 = std::str::from_utf8(&bytes[..n])
                    .expect("ASCII")
                    .parse()
                    .unwrap_or(0);
                for max in 1..=7 {
                    let want = (1..=max).contains(&n).then_some((value, n));
                    assert_eq!(
                        word_digits(u64::from_le_bytes(bytes), max),
                        want,
                        "{bytes:?} {max}"
                    );
                }
            }
        }
        let word = |s: &[u8; 8]| u64::from_le_bytes(*s);
        assert_eq!(word_digits(word(b"0000000/"), 7), Some((0, 7)));
        assert_eq!(word_digits(word(b"1000000:"), 7), Some((1_000_000, 7)));
        assert_eq!(word_digits(word(b"09/99999"), 7), Some((9, 2)));
        assert_eq!(word_digits(word(b"/1234567"), 7), None);
        assert_eq!(word_digits(word(b":1234567"), 7), None);
        assert_eq!(word_digits(word(b"12345678"), 7), None);
    }

    /// Every line of the committed STD fixtures, good and bad, from every byte of each (so the
    /// windows start inside lines too, and at every malformed form of `fixtures/bad/std-*.std`): [`usual_in_window`] takes exactly the usual ones and
    /// reads them as [`translate_at`] does.
    #[test]
    fn usual_in_window_agrees_on_the_fixtures() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        let mut files = 0;
        for dir in [root.join("std"), root.join("bad")] {
            for entry in std::fs::read_dir(&dir).expect("fixtures") {
                let path = entry.expect("entry").path();
                if path.extension().is_some_and(|e| e == "std") {
                    let data = std::fs::read(&path).expect("fixture");
                    for at in 0..data.len() {
                        // A line of the usual shape is 28 bytes at most: 64 hold it and more.
                        window_agrees(b"", &data[at..data.len().min(at + 64)])
                            .unwrap_or_else(|e| panic!("{}: {at}: {e}", path.display()));
                    }
                    files += 1;
                }
            }
        }
        assert!(files >= 14, "{files} fixtures");
    }

    #[test]
    fn translate_at_takes_the_usual_lines_and_stops_at_their_newline() {
        let (at, out, _) = both(b"", b"T1|acq(L3)|42\nT1|rel(L3)|42\n");
        assert_eq!(at, Some(13));
        assert!(matches!(out.last(), Some(Event::Acquire { .. })));
        assert_eq!(both(b"T1|acq(L3)|42", b"T1|rel(L3)\n").0, Some(10));
        // Past the `\r` of a `\r\n`, which `next_line` drops.
        assert_eq!(both(b"", b"T1|acq(L3)|42\r\n").0, Some(14));
        assert_eq!(both(b"", b"T1|rel(L3)\r\n").0, Some(11));
        // Not whole in the buffer, or of another shape: left to the general path.
        for data in [
            &b"T1|acq(L3)|42"[..],
            b"T1|acq(L3)|42\r",
            b"T1|acq(L3) \n",
            b"T1|acq(L03)\n",
        ] {
            assert_eq!(
                both(b"", data).0,
                None,
                "{:?}",
                String::from_utf8_lossy(data)
            );
        }
    }
}
