//! The JSON encoding of trace events, written by hand.
//!
//! The runtime (`lockcheck`) records traces and must stay light: serde and serde_json in a user's
//! dependency graph change how the user's code type-checks (serde_json's `PartialEq<Value>` impls
//! for integers make `assert_eq!(45, range.sum())` ambiguous, E0283). So the writer is plain code
//! and serde is an optional feature of this crate, enabled by the analyzer, which reads traces.
//! The output is byte-for-byte what serde_json writes for the `serde` derives of
//! [`Event`] (tested below with the feature on), so either side can change
//! without the other noticing only if that test is kept.

use crate::trace::{ClassStats, Event, Frame, How, LockKind, Mode, Short};

/// Appends the JSON object of `e` (no newline) to `out`.
pub(crate) fn write_event(e: &Event, out: &mut Vec<u8>) {
    let mut o = Obj::new(out, event_tag(e));
    match e {
        Event::Header {
            version,
            pid,
            program,
            start_unix_ms,
            hold_resolution_ns,
        } => {
            o.num("version", u64::from(*version));
            o.num("pid", u64::from(*pid));
            o.str("program", program);
            o.num("start_unix_ms", *start_unix_ms);
            if *hold_resolution_ns != 0 {
                o.num("hold_resolution_ns", *hold_resolution_ns);
            }
        }
        Event::Thread { t, name } => {
            o.num("t", *t);
            if let Some(n) = name {
                o.str("name", n);
            }
        }
        Event::Class { c, key, kind } => {
            o.num("c", u64::from(*c));
            o.str("key", key);
            o.raw_str("kind", kind_tag(*kind));
        }
        Event::Site { s, loc, frames } => {
            o.num("s", u64::from(*s));
            o.str("loc", loc);
            if !frames.is_empty() {
                o.key("frames");
                o.out.push(b'[');
                for (i, f) in frames.iter().enumerate() {
                    if i > 0 {
                        o.out.push(b',');
                    }
                    write_frame(f, o.out);
                }
                o.out.push(b']');
            }
        }
        Event::Lock { l, c, permits } => {
            o.num("l", *l);
            o.num("c", u64::from(*c));
            if let Some(p) = permits {
                o.num("permits", *p);
            }
        }
        Event::Request {
            t,
            l,
            m,
            s,
            n,
            short,
        } => {
            o.num("t", *t);
            o.num("l", *l);
            o.raw_str("m", mode_tag(*m));
            if let Some(s) = s {
                o.num("s", u64::from(*s));
            }
            if *n != 1 {
                o.num("n", u64::from(*n));
            }
            if let Some(short) = short {
                o.raw_str("short", short_tag(*short));
            }
        }
        Event::Forget { l, n } => {
            o.num("l", *l);
            o.num("n", *n);
        }
        Event::Written { l } => o.num("l", *l),
        Event::ClassWritten { c } => o.num("c", u64::from(*c)),
        Event::Acquire {
            t,
            l,
            m,
            how,
            s,
            wait_ns,
        } => {
            o.num("t", *t);
            o.num("l", *l);
            o.raw_str("m", mode_tag(*m));
            if *how != How::Blocking {
                o.raw_str("how", how_tag(*how));
            }
            if let Some(s) = s {
                o.num("s", u64::from(*s));
            }
            if *wait_ns != 0 {
                o.num("wait_ns", *wait_ns);
            }
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
            o.num("t", *t);
            o.num("l", *l);
            o.raw_str("m", mode_tag(*m));
            o.raw_str("how", how_tag(*how));
            if let Some(s) = s {
                o.num("s", u64::from(*s));
            }
            if *wait_ns != 0 {
                o.num("wait_ns", *wait_ns);
            }
            if *n != 1 {
                o.num("n", u64::from(*n));
            }
        }
        Event::Release { t, l, hold_ns } => {
            o.num("t", *t);
            o.num("l", *l);
            if *hold_ns != 0 {
                o.num("hold_ns", *hold_ns);
            }
        }
        Event::Convert { t, l, m } => {
            o.num("t", *t);
            o.num("l", *l);
            o.raw_str("m", mode_tag(*m));
        }
        Event::CondWait { t, cv, l, timed } => {
            o.num("t", *t);
            o.num("cv", *cv);
            o.num("l", *l);
            if *timed {
                o.key("timed");
                o.out.extend_from_slice(b"true");
            }
        }
        Event::Notify { t, cv, s } => {
            o.num("t", *t);
            o.num("cv", *cv);
            if let Some(s) = s {
                o.num("s", u64::from(*s));
            }
        }
        Event::Forked { parent, t } => {
            o.num("parent", u64::from(*parent));
            o.num("t", *t);
        }
        Event::LeftHeld { t, l, m, s } => {
            o.num("t", *t);
            o.num("l", *l);
            o.raw_str("m", mode_tag(*m));
            if let Some(s) = s {
                o.num("s", u64::from(*s));
            }
        }
        Event::Fork { t, child } => {
            o.num("t", *t);
            o.num("child", *child);
        }
        Event::Join { t, child, scope } => {
            o.num("t", *t);
            o.num("child", *child);
            if *scope {
                o.key("scope");
                o.out.extend_from_slice(b"true");
            }
        }
        Event::Returned { t } => o.num("t", *t),
        Event::Drop { l } => o.num("l", *l),
        Event::HeldAcrossAwait {
            t,
            l,
            m,
            s,
            h,
            ht,
            hs,
        } => {
            o.num("t", *t);
            o.num("l", *l);
            o.raw_str("m", mode_tag(*m));
            if let Some(s) = s {
                o.num("s", u64::from(*s));
            }
            o.num("h", *h);
            o.num("ht", *ht);
            if let Some(hs) = hs {
                o.num("hs", u64::from(*hs));
            }
        }
        Event::Stats { c, stats } => {
            o.num("c", u64::from(*c));
            let ClassStats {
                acquisitions,
                contended,
                wait_total_ns,
                wait_max_ns,
                hold_total_ns,
                hold_max_ns,
            } = stats;
            o.num("acquisitions", *acquisitions);
            o.num("contended", *contended);
            o.num("wait_total_ns", *wait_total_ns);
            o.num("wait_max_ns", *wait_max_ns);
            o.num("hold_total_ns", *hold_total_ns);
            o.num("hold_max_ns", *hold_max_ns);
        }
    }
    o.out.push(b'}');
}

fn write_frame(f: &Frame, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut o = Obj { out, first: true };
    if let Some(n) = &f.function {
        o.str("fn", n);
    }
    if let Some(file) = &f.file {
        o.str("file", file);
    }
    if let Some(line) = f.line {
        o.num("line", u64::from(line));
    }
    out.push(b'}');
}

/// The `"e"` tag of each variant (serde's `rename_all = "snake_case"`).
fn event_tag(e: &Event) -> &'static str {
    match e {
        Event::Header { .. } => "header",
        Event::Thread { .. } => "thread",
        Event::Class { .. } => "class",
        Event::Site { .. } => "site",
        Event::Lock { .. } => "lock",
        Event::Request { .. } => "request",
        Event::Acquire { .. } => "acquire",
        Event::Fail { .. } => "fail",
        Event::Release { .. } => "release",
        Event::Convert { .. } => "convert",
        Event::CondWait { .. } => "cond_wait",
        Event::Fork { .. } => "fork",
        Event::Join { .. } => "join",
        Event::Returned { .. } => "returned",
        Event::Drop { .. } => "drop",
        Event::Forget { .. } => "forget",
        Event::Written { .. } => "written",
        Event::ClassWritten { .. } => "class_written",
        Event::HeldAcrossAwait { .. } => "held_across_await",
        Event::Notify { .. } => "notify",
        Event::Forked { .. } => "forked",
        Event::LeftHeld { .. } => "left_held",
        Event::Stats { .. } => "stats",
    }
}

/// A mode's short tag: `w`, `r`, `rr`, `u`, `p`.
fn mode_tag(m: Mode) -> &'static str {
    match m {
        Mode::Exclusive => "w",
        Mode::Shared => "r",
        Mode::SharedRecursive => "rr",
        Mode::Upgradable => "u",
        Mode::Permit => "p",
    }
}

fn short_tag(s: Short) -> &'static str {
    match s {
        Short::Held => "held",
        Short::Alone => "alone",
    }
}

fn how_tag(h: How) -> &'static str {
    match h {
        How::Blocking => "blocking",
        How::Try => "try",
        How::Timed => "timed",
    }
}

fn kind_tag(k: LockKind) -> &'static str {
    match k {
        LockKind::Mutex => "mutex",
        LockKind::Rwlock => "rwlock",
        LockKind::Semaphore => "semaphore",
        LockKind::Condvar => "condvar",
        LockKind::Unknown => "unknown",
        LockKind::Once => "once",
        LockKind::End => "end",
        LockKind::Channel => "channel",
        LockKind::Barrier => "barrier",
    }
}

/// An object being written: commas between fields.
struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    /// Opens an event object with its `"e"` tag.
    fn new(out: &'a mut Vec<u8>, tag: &str) -> Obj<'a> {
        out.extend_from_slice(b"{\"e\":\"");
        out.extend_from_slice(tag.as_bytes());
        out.push(b'"');
        Obj { out, first: false }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn num(&mut self, k: &str, v: u64) {
        self.key(k);
        put_u64(self.out, v);
    }

    /// A string known to need no escaping (the enum tags above).
    fn raw_str(&mut self, k: &str, v: &str) {
        self.key(k);
        self.out.push(b'"');
        self.out.extend_from_slice(v.as_bytes());
        self.out.push(b'"');
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        put_str(self.out, v);
    }
}

/// Decimal digits of `n`.
fn put_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// A JSON string with serde_json's escapes: `\"`, `\\`, the short forms `\b \f \n \r \t`, and
/// `\u00xx` (lowercase hex) for other control characters; everything else (non-ASCII, `/`, DEL)
/// as is.
fn put_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => &[],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use crate::trace::*;

    /// Every variant, with every optional field both present and absent, and strings that need
    /// every kind of escape.
    fn samples() -> Vec<Event> {
        let nasty = [
            "",
            "plain",
            "src/a b.rs:3:9",
            "quote\" backslash\\ slash/",
            "\u{0}\u{1}\u{8}\u{9}\u{a}\u{b}\u{c}\u{d}\u{1f}\u{7f}",
            "non-ascii: é ✓ 🦀",
        ];
        let nums = [0u64, 1, 9, 10, 4_294_967_295, u64::MAX];
        let modes = [
            Mode::Exclusive,
            Mode::Shared,
            Mode::SharedRecursive,
            Mode::Upgradable,
            Mode::Permit,
        ];
        let hows = [How::Blocking, How::Try, How::Timed];
        let kinds = [
            LockKind::Mutex,
            LockKind::Rwlock,
            LockKind::Semaphore,
            LockKind::Condvar,
            LockKind::Unknown,
            LockKind::Once,
            LockKind::End,
            LockKind::Channel,
            LockKind::Barrier,
        ];
        let mut v = Vec::new();
        for (i, s) in nasty.iter().enumerate() {
            let n = nums[i % nums.len()];
            v.push(Event::Header {
                version: FORMAT_VERSION,
                pid: n as u32,
                program: s.to_string(),
                start_unix_ms: n,
                hold_resolution_ns: if i % 2 == 0 { 0 } else { n },
            });
            v.push(Event::Thread {
                t: n,
                name: (i % 2 == 0).then(|| s.to_string()),
            });
            v.push(Event::Class {
                c: i as u32,
                key: s.to_string(),
                kind: kinds[i % kinds.len()],
            });
            v.push(Event::Site {
                s: u32::MAX - i as u32,
                loc: s.to_string(),
                frames: (0..i)
                    .map(|j| Frame {
                        function: (j % 2 == 0).then(|| s.to_string()),
                        file: (j % 3 != 1).then(|| nasty[j].to_string()),
                        line: (j % 3 != 2).then_some(j as u32 * 1000),
                    })
                    .collect(),
            });
        }
        for &n in &nums {
            for &m in &modes {
                for &how in &hows {
                    for s in [None, Some(0u32), Some(u32::MAX)] {
                        v.push(Event::Acquire {
                            t: n,
                            l: n ^ 5,
                            m,
                            how,
                            s,
                            wait_ns: n,
                        });
                        v.push(Event::Fail {
                            t: n,
                            l: n / 3,
                            m,
                            how,
                            s,
                            wait_ns: n,
                            n: 1,
                        });
                        v.push(Event::Fail {
                            t: n,
                            l: n / 3,
                            m,
                            how,
                            s,
                            wait_ns: n,
                            n: (n as u32).max(2),
                        });
                        v.push(Event::Request {
                            t: n,
                            l: 1,
                            m,
                            s,
                            n: 1,
                            short: None,
                        });
                        v.push(Event::Request {
                            t: n,
                            l: 1,
                            m,
                            s,
                            n: (n as u32).max(2),
                            short: Some(Short::Alone),
                        });
                        v.push(Event::HeldAcrossAwait {
                            t: n,
                            l: 2,
                            m,
                            s,
                            h: n / 7,
                            ht: n ^ 1,
                            hs: s.map(|x| x / 2),
                        });
                    }
                }
                v.push(Event::Convert { t: n, l: n, m });
            }
            v.push(Event::Lock {
                l: n,
                c: 3,
                permits: (n % 2 == 1).then_some(n),
            });
            v.push(Event::Release {
                t: n,
                l: 2,
                hold_ns: n,
            });
            v.push(Event::CondWait {
                t: n,
                cv: 4,
                l: n,
                timed: n % 2 == 1,
            });
            v.push(Event::Notify {
                t: n,
                cv: 4,
                s: (n % 2 == 0).then_some(n as u32),
            });
            v.push(Event::Forked {
                parent: n as u32,
                t: n,
            });
            v.push(Event::LeftHeld {
                t: n,
                l: 2,
                m: Mode::Shared,
                s: (n % 2 == 1).then_some(n as u32),
            });
            v.push(Event::Fork { t: 1, child: n });
            v.push(Event::Join {
                t: n,
                child: 2,
                scope: n % 2 == 0,
            });
            v.push(Event::Returned { t: n });
            v.push(Event::Drop { l: n });
            v.push(Event::Forget { l: n, n: n / 2 });
            v.push(Event::Written { l: n });
            v.push(Event::ClassWritten { c: n as u32 });
            v.push(Event::Stats {
                c: n as u32,
                stats: ClassStats {
                    acquisitions: n,
                    contended: 1,
                    wait_total_ns: n / 2,
                    wait_max_ns: 0,
                    hold_total_ns: 7,
                    hold_max_ns: n,
                },
            });
        }
        v
    }

    #[test]
    fn hand_written_json_is_byte_for_byte_serde_json() {
        for e in samples() {
            let mut ours = Vec::new();
            e.write_line(&mut ours);
            let theirs = serde_json::to_string(&e).unwrap() + "\n";
            assert_eq!(String::from_utf8(ours).unwrap(), theirs, "{e:?}");
        }
    }

    #[test]
    fn hand_written_json_parses_back_as_the_model() {
        for e in samples() {
            let mut line = Vec::new();
            e.write_line(&mut line);
            let back: Event = serde_json::from_slice(&line).unwrap();
            assert_eq!(back, e);
        }
    }
}
