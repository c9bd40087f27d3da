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
    tr: Translator,
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
            // The usual line straight in the read buffer (see `translate_at`), without the
            // search for its end and the line's own slice.
            if self.started
                && self
                    .lines
                    .next_with(|data| translate_at(&mut self.tr, data, out))
            {
                continue;
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
                Event::Join { t, child }
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

    /// What [`translate_at`] makes of `data`, and what [`translate_common`] makes of the line
    /// [`Lines::next_line`] would return at its start (up to the first newline, without a
    /// `\r` before it), each with a translator of its own that has seen `seen` first.
    fn both(seen: &[u8], data: &[u8]) -> (Option<usize>, Vec<Event>, Reference) {
        let warm = |tr: &mut Translator| {
            let mut sink = Vec::new();
            for line in seen.split(|&b| b == b'\n') {
                translate_common(tr, line, &mut sink);
            }
        };
        let (mut a, mut b) = (Translator::default(), Translator::default());
        warm(&mut a);
        warm(&mut b);
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
            seen in proptest::collection::vec(prop_oneof![
                Just("T1|acq(L3)|42"), Just("T12|rel(L42)"), Just("T7|req(L0)|0"),
                Just("T1|acq(3)|42"), Just("T2|r(9)|1"),
            ], 0..3),
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
