//! The fast path of the JSON Lines reader: the events of lock operations as the recorder writes
//! them (`{"e":"acquire","t":1,"l":2,"m":"w","s":3}`), parsed at the byte level from the borrowed
//! line without building any intermediate value.
//!
//! It accepts a subset of what serde accepts and gives the same event for it: an object of the
//! known fields of these events with plain non-negative integers and the known strings, in any
//! order, with any JSON blanks. Anything else (escapes, `null`, floats, unknown or repeated fields,
//! other events, a missing required field, a number out of range) returns `None`, and the full
//! parser decides, with its error messages and positions.

use lockcheck_core::trace::{Event, How, Mode};

/// The event kinds of the fast path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Lock,
    Request,
    Acquire,
    Fail,
    Release,
    Convert,
    CondWait,
    Fork,
    Join,
    Drop,
    Forget,
    Written,
    ClassWritten,
}

/// The fields seen in one object, by bit: every field at most once.
#[derive(Default)]
struct Fields {
    seen: u32,
    kind: Option<Kind>,
    t: u64,
    l: u64,
    c: u64,
    s: u64,
    cv: u64,
    child: u64,
    permits: u64,
    wait_ns: u64,
    hold_ns: u64,
    n: u64,
    m: Option<Mode>,
    how: Option<How>,
}

const E: u32 = 1;
const T: u32 = 1 << 1;
const L: u32 = 1 << 2;
const C: u32 = 1 << 3;
const S: u32 = 1 << 4;
const CV: u32 = 1 << 5;
const CHILD: u32 = 1 << 6;
const PERMITS: u32 = 1 << 7;
const WAIT: u32 = 1 << 8;
const HOLD: u32 = 1 << 9;
const M: u32 = 1 << 10;
const HOW: u32 = 1 << 11;
const N: u32 = 1 << 12;

struct P<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> P<'a> {
    #[inline]
    fn blanks(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// A string without escapes: its raw bytes.
    #[inline]
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let b = self.b;
        let start = self.i;
        let len = memchr::memchr(b'"', &b[start..])?;
        let s = &b[start..start + len];
        if s.contains(&b'\\') {
            return None;
        }
        self.i = start + len + 1;
        Some(s)
    }

    /// A non-negative integer in JSON's syntax (no leading zero, no fraction, no exponent) that
    /// fits a `u64`.
    #[inline]
    fn number(&mut self) -> Option<u64> {
        let b = self.b;
        let first = *b.get(self.i)?;
        if first == b'0' {
            self.i += 1;
            return match b.get(self.i) {
                Some(b'0'..=b'9' | b'.' | b'e' | b'E') => None,
                _ => Some(0),
            };
        }
        if !first.is_ascii_digit() {
            return None;
        }
        let mut v: u64 = 0;
        while let Some(&d) = b.get(self.i) {
            if !d.is_ascii_digit() {
                if matches!(d, b'.' | b'e' | b'E') {
                    return None;
                }
                break;
            }
            v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.i += 1;
        }
        Some(v)
    }
}

/// The event of `line`, if it is a plain lock-operation event (see the module docs).
#[inline]
pub(in crate::read) fn event(line: &[u8]) -> Option<Event> {
    let mut p = P { b: line, i: 0 };
    let mut f = Fields::default();
    p.blanks();
    p.eat(b'{')?;
    p.blanks();
    loop {
        let key = p.string()?;
        p.blanks();
        p.eat(b':')?;
        p.blanks();
        let bit = match key {
            b"e" => {
                f.kind = Some(match p.string()? {
                    b"acquire" => Kind::Acquire,
                    b"release" => Kind::Release,
                    b"request" => Kind::Request,
                    b"fail" => Kind::Fail,
                    b"lock" => Kind::Lock,
                    b"convert" => Kind::Convert,
                    b"cond_wait" => Kind::CondWait,
                    b"fork" => Kind::Fork,
                    b"join" => Kind::Join,
                    b"drop" => Kind::Drop,
                    b"forget" => Kind::Forget,
                    b"written" => Kind::Written,
                    b"class_written" => Kind::ClassWritten,
                    _ => return None,
                });
                E
            }
            b"m" => {
                f.m = Some(match p.string()? {
                    b"w" => Mode::Exclusive,
                    b"r" => Mode::Shared,
                    b"rr" => Mode::SharedRecursive,
                    b"u" => Mode::Upgradable,
                    b"p" => Mode::Permit,
                    _ => return None,
                });
                M
            }
            b"how" => {
                f.how = Some(match p.string()? {
                    b"blocking" => How::Blocking,
                    b"try" => How::Try,
                    b"timed" => How::Timed,
                    _ => return None,
                });
                HOW
            }
            _ => {
                let (slot, bit) = match key {
                    b"t" => (&mut f.t, T),
                    b"l" => (&mut f.l, L),
                    b"c" => (&mut f.c, C),
                    b"s" => (&mut f.s, S),
                    b"cv" => (&mut f.cv, CV),
                    b"child" => (&mut f.child, CHILD),
                    b"permits" => (&mut f.permits, PERMITS),
                    b"wait_ns" => (&mut f.wait_ns, WAIT),
                    b"hold_ns" => (&mut f.hold_ns, HOLD),
                    b"n" => (&mut f.n, N),
                    _ => return None,
                };
                *slot = p.number()?;
                bit
            }
        };
        if f.seen & bit != 0 {
            return None;
        }
        f.seen |= bit;
        p.blanks();
        match p.b.get(p.i)? {
            b',' => {
                p.i += 1;
                p.blanks();
            }
            b'}' => {
                p.i += 1;
                break;
            }
            _ => return None,
        }
    }
    p.blanks();
    if p.i != line.len() {
        return None;
    }
    build(&f)
}

/// The event of the fields, if every field the kind requires is there and in range.
#[inline]
fn build(f: &Fields) -> Option<Event> {
    let has = |bits: u32| f.seen & bits == bits;
    let site = || -> Option<Option<u32>> {
        if has(S) {
            Some(Some(u32::try_from(f.s).ok()?))
        } else {
            Some(None)
        }
    };
    let wait_ns = if has(WAIT) { f.wait_ns } else { 0 };
    Some(match f.kind? {
        Kind::Acquire if has(T | L | M) => Event::Acquire {
            t: f.t,
            l: f.l,
            m: f.m?,
            how: f.how.unwrap_or_default(),
            s: site()?,
            wait_ns,
        },
        Kind::Release if has(T | L) => Event::Release {
            t: f.t,
            l: f.l,
            hold_ns: if has(HOLD) { f.hold_ns } else { 0 },
        },
        Kind::Request if has(T | L | M) => Event::Request {
            t: f.t,
            l: f.l,
            m: f.m?,
            s: site()?,
            n: if has(N) { u32::try_from(f.n).ok()? } else { 1 },
            // A `short` is an unknown field here: such a request is the full parser's.
            short: None,
        },
        Kind::Fail if has(T | L | M | HOW) => Event::Fail {
            t: f.t,
            l: f.l,
            m: f.m?,
            how: f.how?,
            s: site()?,
            wait_ns,
            n: if has(N) { u32::try_from(f.n).ok()? } else { 1 },
        },
        Kind::Lock if has(L | C) => Event::Lock {
            l: f.l,
            c: u32::try_from(f.c).ok()?,
            permits: has(PERMITS).then_some(f.permits),
        },
        Kind::Convert if has(T | L | M) => Event::Convert {
            t: f.t,
            l: f.l,
            m: f.m?,
        },
        Kind::CondWait if has(T | CV | L) => Event::CondWait {
            t: f.t,
            cv: f.cv,
            l: f.l,
            timed: false,
        },
        Kind::Fork if has(T | CHILD) => Event::Fork {
            t: f.t,
            child: f.child,
        },
        // `scope` is an unknown field here: a scope's join is the full parser's.
        Kind::Join if has(T | CHILD) => Event::Join {
            t: f.t,
            child: f.child,
            scope: false,
        },
        Kind::Drop if has(L) => Event::Drop { l: f.l },
        Kind::Forget if has(L | N) => Event::Forget { l: f.l, n: f.n },
        Kind::Written if has(L) => Event::Written { l: f.l },
        Kind::ClassWritten if has(C) => Event::ClassWritten {
            c: u32::try_from(f.c).ok()?,
        },
        _ => return None,
    })
}
