//! The first fast path of the JSON Lines reader: a lock-operation event in exactly the shape the
//! recorder writes it (`lockcheck_core::json`: `{"e":"acquire","t":1,"l":2,"m":"w","s":3}`, the
//! fields in the writer's order, optional ones in place, no blanks), matched byte by byte against
//! the expected keys.
//!
//! Written by hand because this is the analyzer's hot loop on JSON Lines traces: a general JSON
//! parser (or [`super::fast`], which takes the fields in any order) spends most of its time
//! finding where keys and strings end, which this path never has to, knowing what comes next.
//!
//! Anything else (blanks, another order, escapes, a number with a leading zero, a fraction or
//! more than 19 digits, a value out of range, an unknown field or event) returns `None`, and
//! [`super::fast::event`] then the full parser decide. What this path accepts, serde reads as the
//! same event (tested in `read/tests.rs`, `fast_paths`).

use lockcheck_core::trace::{Event, How, Mode};

/// A cursor over one line.
struct X<'a> {
    b: &'a [u8],
    i: usize,
}

impl X<'_> {
    /// Skips `lit` if the line continues with it.
    #[inline(always)]
    fn lit(&mut self, lit: &[u8]) -> Option<()> {
        if self.b[self.i..].starts_with(lit) {
            self.i += lit.len();
            Some(())
        } else {
            None
        }
    }

    /// Whether the line continues with `lit` (skipped if so).
    #[inline(always)]
    fn next_is(&mut self, lit: &[u8]) -> bool {
        self.lit(lit).is_some()
    }

    /// A non-negative integer of 1 to 19 digits (so within `u64`), without a leading zero. What
    /// follows is left to the caller, which expects `,` or `}` (so a fraction or an exponent
    /// fails there).
    #[inline(always)]
    fn num(&mut self) -> Option<u64> {
        let b = self.b;
        let start = self.i;
        let mut i = start;
        let mut v: u64 = 0;
        while let Some(&c) = b.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            // At most 19 digits are kept (checked below), which cannot overflow.
            v = v.wrapping_mul(10).wrapping_add(u64::from(d));
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 19 || (n > 1 && b[start] == b'0') {
            return None;
        }
        self.i = i;
        Some(v)
    }

    /// A number that must fit a `u32`.
    #[inline(always)]
    fn num32(&mut self) -> Option<u32> {
        u32::try_from(self.num()?).ok()
    }

    /// The rest of a `"m":"` value: the mode and its closing quote.
    #[inline(always)]
    fn mode(&mut self) -> Option<Mode> {
        let (m, len) = match self.b.get(self.i..self.i + 2)? {
            b"w\"" => (Mode::Exclusive, 2),
            b"r\"" => (Mode::Shared, 2),
            b"u\"" => (Mode::Upgradable, 2),
            b"p\"" => (Mode::Permit, 2),
            b"rr" if self.b.get(self.i + 2) == Some(&b'"') => (Mode::SharedRecursive, 3),
            _ => return None,
        };
        self.i += len;
        Some(m)
    }

    /// The rest of a `"how":"` value: the way and its closing quote.
    #[inline(always)]
    fn how(&mut self) -> Option<How> {
        if self.next_is(b"try\"") {
            Some(How::Try)
        } else if self.next_is(b"timed\"") {
            Some(How::Timed)
        } else if self.next_is(b"blocking\"") {
            Some(How::Blocking)
        } else {
            None
        }
    }

    /// The optional `,"s":N` of an acquisition.
    #[inline(always)]
    fn site(&mut self) -> Option<Option<u32>> {
        if self.next_is(b",\"s\":") {
            Some(Some(self.num32()?))
        } else {
            Some(None)
        }
    }

    /// An optional `,"KEY":N` (`key` holds `,"KEY":`); 0 when absent.
    #[inline(always)]
    fn opt(&mut self, key: &[u8]) -> Option<u64> {
        if self.next_is(key) {
            self.num()
        } else {
            Some(0)
        }
    }

    /// The closing brace and the newline after it; returns the length of the line (the offset of
    /// that newline in the input).
    #[inline(always)]
    fn end(&mut self) -> Option<usize> {
        if self.b.get(self.i..self.i + 2)? != b"}\n" {
            return None;
        }
        Some(self.i + 1 + PREFIX.len())
    }
}

/// How every event line starts.
const PREFIX: &[u8] = b"{\"e\":\"";

/// The event of `line` (without its newline), if it is a lock-operation event in the recorder's
/// exact shape (see the module docs).
#[cfg(test)]
pub(in crate::read) fn event(line: &[u8]) -> Option<Event> {
    let mut data = line.to_vec();
    data.push(b'\n');
    let mut out = Vec::new();
    let len = push(&data, &mut out)?;
    assert_eq!(len, line.len());
    out.pop()
}

/// Appends to `out` the event at the start of `data` (the unread input, at the start of a line)
/// if its line is a lock-operation event in the recorder's exact shape followed by a newline, and
/// returns the length of that line (without its newline). None of the bytes this path accepts is
/// a newline, so the event lies within the first line of `data`, which is exactly its line.
#[inline(always)]
pub(in crate::read) fn push(data: &[u8], out: &mut Vec<Event>) -> Option<usize> {
    let rest = data.strip_prefix(PREFIX)?;
    let mut x = X { b: rest, i: 0 };
    if x.next_is(b"acquire\",\"t\":") {
        let t = x.num()?;
        x.lit(b",\"l\":")?;
        let l = x.num()?;
        x.lit(b",\"m\":\"")?;
        let m = x.mode()?;
        let how = if x.next_is(b",\"how\":\"") {
            x.how()?
        } else {
            How::Blocking
        };
        let s = x.site()?;
        let wait_ns = x.opt(b",\"wait_ns\":")?;
        let len = x.end()?;
        out.push(Event::Acquire {
            t,
            l,
            m,
            how,
            s,
            wait_ns,
        });
        Some(len)
    } else if x.next_is(b"release\",\"t\":") {
        let t = x.num()?;
        x.lit(b",\"l\":")?;
        let l = x.num()?;
        let hold_ns = x.opt(b",\"hold_ns\":")?;
        let len = x.end()?;
        out.push(Event::Release { t, l, hold_ns });
        Some(len)
    } else if x.next_is(b"request\",\"t\":") {
        let t = x.num()?;
        x.lit(b",\"l\":")?;
        let l = x.num()?;
        x.lit(b",\"m\":\"")?;
        let m = x.mode()?;
        let s = x.site()?;
        let n = if x.next_is(b",\"n\":") { x.num32()? } else { 1 };
        let len = x.end()?;
        // A request with a `short` (rare: a semaphore lacking permits) is left to the full
        // parser: `end` fails on its field.
        out.push(Event::Request {
            t,
            l,
            m,
            s,
            n,
            short: None,
        });
        Some(len)
    } else {
        other(x, out)
    }
}

/// The rarer lock operations (kept out of line so the common ones stay short).
#[inline(never)]
fn other(mut x: X<'_>, out: &mut Vec<Event>) -> Option<usize> {
    if x.next_is(b"fail\",\"t\":") {
        let t = x.num()?;
        x.lit(b",\"l\":")?;
        let l = x.num()?;
        x.lit(b",\"m\":\"")?;
        let m = x.mode()?;
        x.lit(b",\"how\":\"")?;
        let how = x.how()?;
        let s = x.site()?;
        let wait_ns = x.opt(b",\"wait_ns\":")?;
        let n = if x.next_is(b",\"n\":") { x.num32()? } else { 1 };
        let len = x.end()?;
        out.push(Event::Fail {
            t,
            l,
            m,
            how,
            s,
            wait_ns,
            n,
        });
        Some(len)
    } else if x.next_is(b"lock\",\"l\":") {
        let l = x.num()?;
        x.lit(b",\"c\":")?;
        let c = x.num32()?;
        let permits = if x.next_is(b",\"permits\":") {
            Some(x.num()?)
        } else {
            None
        };
        let len = x.end()?;
        out.push(Event::Lock { l, c, permits });
        Some(len)
    } else if x.next_is(b"convert\",\"t\":") {
        let t = x.num()?;
        x.lit(b",\"l\":")?;
        let l = x.num()?;
        x.lit(b",\"m\":\"")?;
        let m = x.mode()?;
        let len = x.end()?;
        out.push(Event::Convert { t, l, m });
        Some(len)
    } else if x.next_is(b"cond_wait\",\"t\":") {
        let t = x.num()?;
        x.lit(b",\"cv\":")?;
        let cv = x.num()?;
        x.lit(b",\"l\":")?;
        let l = x.num()?;
        let len = x.end()?;
        out.push(Event::CondWait {
            t,
            cv,
            l,
            timed: false,
        });
        Some(len)
    } else if x.next_is(b"fork\",\"t\":") {
        let t = x.num()?;
        x.lit(b",\"child\":")?;
        let child = x.num()?;
        let len = x.end()?;
        out.push(Event::Fork { t, child });
        Some(len)
    } else if x.next_is(b"join\",\"t\":") {
        let t = x.num()?;
        x.lit(b",\"child\":")?;
        let child = x.num()?;
        let len = x.end()?;
        // A scope's join (`scope` after `child`) is the full parser's.
        out.push(Event::Join {
            t,
            child,
            scope: false,
        });
        Some(len)
    } else if x.next_is(b"drop\",\"l\":") {
        let l = x.num()?;
        let len = x.end()?;
        out.push(Event::Drop { l });
        Some(len)
    } else if x.next_is(b"forget\",\"l\":") {
        let l = x.num()?;
        x.lit(b",\"n\":")?;
        let n = x.num()?;
        let len = x.end()?;
        out.push(Event::Forget { l, n });
        Some(len)
    } else if x.next_is(b"written\",\"l\":") {
        let l = x.num()?;
        let len = x.end()?;
        out.push(Event::Written { l });
        Some(len)
    } else if x.next_is(b"class_written\",\"c\":") {
        let c = u32::try_from(x.num()?).ok()?;
        let len = x.end()?;
        out.push(Event::ClassWritten { c });
        Some(len)
    } else {
        None
    }
}
