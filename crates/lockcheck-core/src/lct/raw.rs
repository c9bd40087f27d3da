//! `.lct` versions 3 and 4: the recorder's records copied out as they are.
//!
//! A version-2 writer turns every record of a lock operation into an event (declarations,
//! hold times, per-class statistics, the encoding), about 130 instructions per record on the
//! recorder's background thread. Version 3 keeps every record of version 2 (declarations,
//! `drop`, `forget`, `held_across_await`, ... are written as before) and adds four, so that
//! the writer copies the acquiring threads' records out nearly as they are:
//!
//! | tag | record | fields |
//! |---|---|---|
//! | 17 | `block` | t varint, then raw records of 40 bytes each, to the record's end |
//! | 18 | `site_word` | word varint, s varint: raw records name site `s` by `word` |
//! | 19 | `clock` | nanoseconds per clock tick, 32.32 fixed point (varint) |
//! | 20 | `end` | none: the recording stopped; the per-class `stats` follow from the records |
//!
//! A raw record is five little-endian `u64`: `head` (kind in bits 0-7, mode 8-15, how 16-23,
//! class 32-63), `a`, `b`, `x`, `ts` (see [`RawDecoder`] for what each kind makes of them).
//! The reader, not the writer, derives hold times (from the clock readings `ts`, per thread)
//! and the `stats` events (at `end`), as version 2's writer did. A file cut inside a `block`
//! is readable up to the block's last complete raw record ([`RawDecoder::salvage`]).
//!
//! Version 4 differs in one bit: an `acquire` record with [`REQUESTED`] in its head stands for
//! the `request` event just before it too (same thread, lock, mode and site, one permit), so that
//! an acquisition the recorder saw requested and then taken without a wait takes one raw record
//! instead of two. A version-3 writer never sets the bit, so one decoder reads both versions.
//!
//! Version 5 adds short records for the usual events of the recorded fast path, in the same
//! `block`s, told apart by the first word's bits 61-63 (the shape; 0 in every record of versions
//! 3 and 4, whose `head` has its class in bits 32-52): a blocking acquisition without a wait
//! ([`SHORT_ACQUIRE`], [`SHORT_REQUESTED`]) takes 24 bytes, a release whose hold comes from the
//! readings ([`SHORT_RELEASE`]) 16, every other record the 40 bytes of version 4. See
//! [`RawDecoder`] for the words.

use super::{read_varint, DecodeError, MAX_RECORD_LEN};
use crate::trace::{ClassStats, Event, How, Mode, Short};
use std::collections::{BTreeMap, HashMap};

/// The first four bytes of a version-3 `.lct` file.
pub const MAGIC_V3: [u8; 4] = *b"LCT\x03";

/// The first four bytes of a version-4 `.lct` file: version 3 plus [`REQUESTED`].
pub const MAGIC_V4: [u8; 4] = *b"LCT\x04";

/// The first four bytes of a version-5 `.lct` file: version 4 plus the short records.
pub const MAGIC_V5: [u8; 4] = *b"LCT\x05";

/// Bit of an `acquire` record's `head` (version 4): a `request` of the same lock, mode and site
/// (one permit) came just before it, with nothing of the thread's in between, and the reader makes
/// its event (the recorder folds a request into an acquisition that did not wait). Bits 24-31 of
/// `head` were unused in version 3.
pub const REQUESTED: u64 = 1 << 24;

/// Bit of a `request` record's `head`: the semaphore had fewer available permits than the
/// request asked for, and other holders held some of them (the event's `short` of
/// [`Short::Held`]). Bits 24-31 of a request's `head` are unused before (readers that do not
/// know the bit ignore it).
pub const REQUEST_SHORT_HELD: u64 = 1 << 25;

/// Bit of a `request` record's `head`: the semaphore had fewer available permits than the
/// request asked for, and no other holder held any ([`Short::Alone`]).
pub const REQUEST_SHORT_ALONE: u64 = 1 << 26;

/// Tag of a `block` record: a stream's raw records.
pub const TAG_BLOCK: u8 = 17;
/// Tag of a `site_word` record: the word that stands for a declared site in raw records.
pub const TAG_SITE_WORD: u8 = 18;
/// Tag of a `clock` record: nanoseconds per tick of the clock readings that follow.
pub const TAG_CLOCK: u8 = 19;
/// Tag of the `end` record: the recording stopped (the statistics are due).
pub const TAG_END: u8 = 20;

/// Bytes of one raw record.
pub const RECORD_BYTES: usize = 40;

/// Where a raw record's shape is in its first word (version 5): bits 61-63.
pub const SHAPE_SHIFT: u32 = 61;
/// Shape of a short acquisition (version 5), three words: `lock | class << 40 | 1 << 61`, then
/// `site_word | mode` (the mode's code in bits 0-2, which a site word has clear), then the clock
/// reading. Blocking, no wait, no request folded in.
pub const SHORT_ACQUIRE: u64 = 1;
/// Shape of a short acquisition with its request folded in (version 4's [`REQUESTED`]): as
/// [`SHORT_ACQUIRE`].
pub const SHORT_REQUESTED: u64 = 2;
/// Shape of a short release (version 5), two words: `lock | class << 40 | 3 << 61`, then the
/// clock reading (the hold from the readings, as a version-4 release whose `x` is 0).
pub const SHORT_RELEASE: u64 = 3;
/// Bits of the lock in a short record's first word (the runtime's instance numbers are below
/// 2^40).
pub const SHORT_LOCK_BITS: u32 = 40;
/// Bits of the class in a short record's first word, after the lock (bits 40-60).
pub const SHORT_CLASS_BITS: u32 = 21;
/// The bits of a site word a short acquisition's mode takes (site words are 8-byte aligned).
pub const SHORT_MODE_MASK: u64 = 7;

/// Bytes of a raw record of `shape` (`first word >> SHAPE_SHIFT`) in version 5: `None` for a
/// shape the version does not have (4 to 7).
pub fn shape_bytes(shape: u64) -> Option<usize> {
    match shape {
        0 => Some(RECORD_BYTES),
        SHORT_ACQUIRE | SHORT_REQUESTED => Some(24),
        SHORT_RELEASE => Some(16),
        _ => None,
    }
}

/// Raw record kinds (`head` bits 0-7).
pub const K_REQUEST: u8 = 1;
/// An acquisition: `a` lock, `b` site word, `x` wait in ns, `ts` clock reading.
pub const K_ACQUIRE: u8 = 2;
/// A failed `try_*` or timed acquisition: `a` lock, `b` site word, `x` wait in ns.
pub const K_FAIL: u8 = 3;
/// A release: `a` lock, `x` hold in ns when measured by the hooks (0: from `ts`), `ts` reading.
pub const K_RELEASE: u8 = 4;
/// A change of mode in place: `a` lock, the new mode in `head`.
pub const K_CONVERT: u8 = 5;
/// A condition-variable wait: `a` the mutex, `b` the condition variable.
pub const K_COND_WAIT: u8 = 6;
/// A thread spawned `a`.
pub const K_FORK: u8 = 7;
/// A thread joined `a`; `b` is 1 for a scope's implicit join ([`Event::Join`]'s `scope`).
pub const K_JOIN: u8 = 8;
/// A lock dropped: skipped by readers (the writer writes the `drop` event itself, later).
pub const K_DROP: u8 = 9;
/// A guard held across an `.await`: skipped by readers (written as its own event).
pub const K_HELD_ACROSS_AWAIT: u8 = 10;
/// The thread's closure returned ([`Event::Returned`]); older readers refuse it.
pub const K_RETURNED: u8 = 11;

/// The fixed-size head of a `block` record holding `n` raw records of thread `t`: the record's
/// length, its tag and `t`. The raw records follow, `RECORD_BYTES` each.
pub fn encode_block_head(out: &mut Vec<u8>, t: u64, n: usize) {
    encode_block_head_bytes(out, t, n * RECORD_BYTES);
}

/// The fixed-size head of a `block` record of thread `t` whose raw records take `bytes` bytes
/// (version 5's records differ in size).
pub fn encode_block_head_bytes(out: &mut Vec<u8>, t: u64, bytes: usize) {
    let t_len = (1..10).find(|&k| t >> (7 * k) == 0).unwrap_or(10);
    super::put_varint(out, (1 + t_len + bytes) as u64);
    out.push(TAG_BLOCK);
    super::put_varint(out, t);
}

/// A `site_word` record.
pub fn encode_site_word(out: &mut Vec<u8>, word: u64, s: u32) {
    let mut body = vec![TAG_SITE_WORD];
    super::put_varint(&mut body, word);
    super::put_varint(&mut body, u64::from(s));
    super::put_varint(out, body.len() as u64);
    out.extend_from_slice(&body);
}

/// A `clock` record.
pub fn encode_clock(out: &mut Vec<u8>, ns_per_tick: u64) {
    let mut body = vec![TAG_CLOCK];
    super::put_varint(&mut body, ns_per_tick);
    super::put_varint(out, body.len() as u64);
    out.extend_from_slice(&body);
}

/// The `end` record.
pub fn encode_end(out: &mut Vec<u8>) {
    out.extend_from_slice(&[1, TAG_END]);
}

/// What a reader of version 3 keeps between records: the site words, the clock's scale, the
/// holds of each lock (stream and reading of the acquisition), the statistics.
///
/// The holds are kept per lock, not per stream, and without a window: a guard released by another
/// thread (`send_guard`, an owned tokio guard) finds its acquisition, and what is kept is what is
/// held now (a release removes its entry; a lock's list goes when it is empty). Version 2's writer
/// kept 64 holds per stream and said so at the stop; here nothing is dropped, so nothing is to say.
///
/// Version 5's short records ([`SHORT_ACQUIRE`], [`SHORT_REQUESTED`], [`SHORT_RELEASE`]) read
/// as the version-4 records they stand for: an `acquire` (with [`REQUESTED`] for the second) of
/// the word's lock and class, the mode and site word of the second word, how blocking, `wait_ns`
/// 0, the third word's reading; a `release` with `x` 0 and the second word's reading.
#[derive(Debug)]
pub struct RawDecoder {
    /// Version 5: short records (see above).
    short: bool,
    sites: HashMap<u64, u32>,
    ns_per_tick: u64,
    /// Per lock: (stream, reading) of each acquisition not yet released, oldest first.
    held: HashMap<u64, Vec<(u64, u64)>>,
    stats: BTreeMap<u32, ClassStats>,
}

impl Default for RawDecoder {
    fn default() -> RawDecoder {
        RawDecoder {
            short: false,
            sites: HashMap::new(),
            ns_per_tick: 1 << 32,
            held: HashMap::new(),
            stats: BTreeMap::new(),
        }
    }
}

impl RawDecoder {
    /// A decoder at the start of a file.
    pub fn new() -> RawDecoder {
        RawDecoder::default()
    }

    /// A decoder at the start of a file of `version` (3, 4 or 5: version 5 has short records).
    pub fn for_version(version: u8) -> RawDecoder {
        RawDecoder {
            short: version >= 5,
            ..RawDecoder::default()
        }
    }

    /// Bytes of the raw record that starts at `rec` (its first word at least), or why not.
    fn record_bytes(&self, rec: &[u8]) -> Result<usize, DecodeError> {
        if !self.short {
            return Ok(RECORD_BYTES);
        }
        let w0 = u64::from_le_bytes(rec[..8].try_into().expect("8 bytes"));
        shape_bytes(w0 >> SHAPE_SHIFT).ok_or_else(|| {
            DecodeError::Invalid(format!(
                "unknown raw record shape {} in a version-5 block",
                w0 >> SHAPE_SHIFT
            ))
        })
    }

    /// Bytes of the complete raw records at the start of `recs` (a block cut by a crash): up to
    /// the first record that `recs` ends inside, or to the first word of a record of no known
    /// shape (whose decoding then says so).
    fn whole(&self, recs: &[u8]) -> usize {
        let mut at = 0;
        while recs.len() - at >= 8 {
            match self.record_bytes(&recs[at..]) {
                Ok(n) if recs.len() - at >= n => at += n,
                Ok(_) => break,
                Err(_) => return at + 8,
            }
        }
        at
    }

    /// Decodes the record at the start of `buf` if it is one of version 3's own (tags 17 to 20),
    /// appending its events to `out`: the bytes it took, `Ok(None)` for any other record (or an
    /// empty `buf`), [`DecodeError::Truncated`] (nothing appended) when `buf` ends inside it.
    pub fn decode(
        &mut self,
        buf: &[u8],
        out: &mut Vec<Event>,
    ) -> Result<Option<usize>, DecodeError> {
        if buf.is_empty() {
            return Ok(None);
        }
        let (len, n) = read_varint(buf)?;
        if len == 0 || len > MAX_RECORD_LEN {
            return Err(DecodeError::Invalid(format!("bad record length {len}")));
        }
        let Some(&tag) = buf.get(n) else {
            return Err(DecodeError::Truncated);
        };
        if !(TAG_BLOCK..=TAG_END).contains(&tag) {
            return Ok(None);
        }
        let end = n + len as usize;
        if buf.len() < end {
            return Err(DecodeError::Truncated);
        }
        let body = &buf[n + 1..end];
        match tag {
            TAG_BLOCK => {
                let (t, tn) = read_varint(body)?;
                let recs = &body[tn..];
                if !self.short && recs.len() % RECORD_BYTES != 0 {
                    return Err(DecodeError::Invalid(format!(
                        "block of {} bytes is not a whole number of {RECORD_BYTES}-byte records",
                        recs.len()
                    )));
                }
                self.records(t, recs, out)?;
            }
            TAG_SITE_WORD => {
                let (word, a) = read_varint(body)?;
                let (s, b) = read_varint(&body[a..])?;
                let s = u32::try_from(s)
                    .map_err(|_| DecodeError::Invalid(format!("site {s} over 32 bits")))?;
                if a + b != body.len() {
                    return Err(DecodeError::Invalid(
                        "extra bytes in a site_word record".into(),
                    ));
                }
                self.sites.insert(word, s);
            }
            TAG_CLOCK => {
                let (v, a) = read_varint(body)?;
                if a != body.len() || v == 0 {
                    return Err(DecodeError::Invalid("bad clock record".into()));
                }
                self.ns_per_tick = v;
            }
            _ => {
                if !body.is_empty() {
                    return Err(DecodeError::Invalid("extra bytes in an end record".into()));
                }
                for (c, stats) in std::mem::take(&mut self.stats) {
                    out.push(Event::Stats { c, stats });
                }
            }
        }
        Ok(Some(end))
    }

    /// At the end of a cut file, the complete raw records of a `block` cut at the start of `buf`:
    /// their events appended to `out`, and the bytes they (with the block's head) took; 0 when
    /// `buf` does not start with a block whose head is whole.
    pub fn salvage(&mut self, buf: &[u8], out: &mut Vec<Event>) -> Result<usize, DecodeError> {
        let Ok((len, n)) = read_varint(buf) else {
            return Ok(0);
        };
        if buf.get(n) != Some(&TAG_BLOCK) || len > MAX_RECORD_LEN {
            return Ok(0);
        }
        let Ok((t, tn)) = read_varint(&buf[n + 1..]) else {
            return Ok(0);
        };
        let start = n + 1 + tn;
        let end = (n + len as usize).min(buf.len());
        let whole = self.whole(&buf[start.min(end)..end]);
        if whole == 0 {
            return Ok(0);
        }
        self.records(t, &buf[start..start + whole], out)?;
        Ok(start + whole)
    }

    fn records(&mut self, t: u64, recs: &[u8], out: &mut Vec<Event>) -> Result<(), DecodeError> {
        out.reserve(recs.len() / RECORD_BYTES);
        let mut at = 0;
        while at < recs.len() {
            let rest = &recs[at..];
            if rest.len() < 8 {
                return Err(DecodeError::Invalid(
                    "a block ends inside a raw record's first word".into(),
                ));
            }
            let len = self.record_bytes(rest)?;
            let Some(rec) = rest.get(..len) else {
                return Err(DecodeError::Invalid(format!(
                    "a block ends inside a raw record of {len} bytes"
                )));
            };
            at += len;
            let w =
                |i: usize| u64::from_le_bytes(rec[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            let (head, a, b, x, ts) = match len {
                RECORD_BYTES => (w(0), w(1), w(2), w(3), w(4)),
                // Version 5's short records, as the version-4 records they stand for.
                _ => {
                    let w0 = w(0);
                    let l = w0 & ((1 << SHORT_LOCK_BITS) - 1);
                    let c = (w0 >> SHORT_LOCK_BITS) & ((1 << SHORT_CLASS_BITS) - 1);
                    if w0 >> SHAPE_SHIFT == SHORT_RELEASE {
                        (u64::from(K_RELEASE) | c << 32, l, 0, 0, w(1))
                    } else {
                        let w1 = w(1);
                        let mut head = u64::from(K_ACQUIRE) | (w1 & SHORT_MODE_MASK) << 8 | c << 32;
                        if w0 >> SHAPE_SHIFT == SHORT_REQUESTED {
                            head |= REQUESTED;
                        }
                        (head, l, w1 & !SHORT_MODE_MASK, 0, w(2))
                    }
                }
            };
            if head & REQUESTED != 0 && head as u8 == K_ACQUIRE {
                // Version 4's folded request: its event first, from the acquisition's fields
                // (checked by the acquisition's own decoding, before anything is appended).
                let acquire = self.record(t, head, a, b, x, ts)?;
                out.push(Event::Request {
                    t,
                    l: a,
                    m: mode_of(head)?,
                    s: self.site(b)?,
                    n: 1,
                    short: None,
                });
                out.extend(acquire);
            } else if let Some(e) = self.record(t, head, a, b, x, ts)? {
                out.push(e);
            }
        }
        Ok(())
    }

    fn site(&self, word: u64) -> Result<Option<u32>, DecodeError> {
        match self.sites.get(&word) {
            Some(&s) => Ok(Some(s)),
            None => Err(DecodeError::Invalid(format!(
                "raw record names site word {word:#x}, which no site_word record declared"
            ))),
        }
    }

    fn record(
        &mut self,
        t: u64,
        head: u64,
        a: u64,
        b: u64,
        x: u64,
        ts: u64,
    ) -> Result<Option<Event>, DecodeError> {
        let kind = head as u8;
        let c = (head >> 32) as u32;
        let m = || mode_of(head);
        let how = || -> Result<How, DecodeError> {
            Ok(match (head >> 16) as u8 {
                0 => How::Blocking,
                1 => How::Try,
                2 => How::Timed,
                v => {
                    return Err(DecodeError::Invalid(format!(
                        "unknown how {v} in a raw record"
                    )))
                }
            })
        };
        Ok(Some(match kind {
            K_REQUEST => Event::Request {
                t,
                l: a,
                m: m()?,
                s: self.site(b)?,
                n: if ts == 0 {
                    1
                } else {
                    u32::try_from(ts).map_err(|_| {
                        DecodeError::Invalid(format!("request of {ts} permits, over 32 bits"))
                    })?
                },
                short: if head & REQUEST_SHORT_ALONE != 0 {
                    Some(Short::Alone)
                } else if head & REQUEST_SHORT_HELD != 0 {
                    Some(Short::Held)
                } else {
                    None
                },
            },
            K_ACQUIRE => {
                let e = Event::Acquire {
                    t,
                    l: a,
                    m: m()?,
                    how: how()?,
                    s: self.site(b)?,
                    wait_ns: x,
                };
                let st = self.stats.entry(c).or_default();
                // Saturating: the numbers come from the file (the reader must not panic).
                st.acquisitions = st.acquisitions.saturating_add(1);
                if x > 0 {
                    st.contended = st.contended.saturating_add(1);
                    st.wait_total_ns = st.wait_total_ns.saturating_add(x);
                    st.wait_max_ns = st.wait_max_ns.max(x);
                }
                self.held.entry(a).or_default().push((t, ts));
                e
            }
            // One failure: the recorder writes a streak's further ones as a `fail` record of
            // version 2 with its count, not as a raw record.
            K_FAIL => Event::Fail {
                t,
                l: a,
                m: m()?,
                how: how()?,
                s: self.site(b)?,
                wait_ns: x,
                n: 1,
            },
            K_RELEASE => {
                let since = match self.held.get_mut(&a) {
                    Some(h) => {
                        // This stream's latest hold of the lock, else the latest of any stream
                        // (a guard sent to another thread).
                        let i = h.iter().rposition(|&(s, _)| s == t).unwrap_or(h.len() - 1);
                        let since = h.remove(i).1;
                        if h.is_empty() {
                            self.held.remove(&a);
                        }
                        Some(since)
                    }
                    None => None,
                };
                let hold_ns = match since {
                    _ if x != 0 => x,
                    Some(since) => self.ns(since, ts),
                    None => 0,
                };
                let st = self.stats.entry(c).or_default();
                st.hold_total_ns = st.hold_total_ns.saturating_add(hold_ns);
                st.hold_max_ns = st.hold_max_ns.max(hold_ns);
                Event::Release { t, l: a, hold_ns }
            }
            K_CONVERT => Event::Convert { t, l: a, m: m()? },
            K_COND_WAIT => Event::CondWait {
                t,
                cv: b,
                l: a,
                timed: false,
            },
            K_FORK => Event::Fork { t, child: a },
            K_JOIN => Event::Join {
                t,
                child: a,
                scope: match b {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::Invalid(format!("a join's scope flag is {b}"))),
                },
            },
            K_RETURNED => Event::Returned { t },
            K_DROP | K_HELD_ACROSS_AWAIT => return Ok(None),
            k => return Err(DecodeError::Invalid(format!("unknown raw record kind {k}"))),
        }))
    }

    /// Nanoseconds between two readings, as the recorder's writer converts them (0 when the
    /// earlier is 0: no reading).
    fn ns(&self, earlier: u64, later: u64) -> u64 {
        ticks_to_ns(self.ns_per_tick, earlier, later)
    }
}

/// The mode of a raw record's `head` (bits 8-15).
fn mode_of(head: u64) -> Result<Mode, DecodeError> {
    Ok(match (head >> 8) as u8 {
        0 => Mode::Exclusive,
        1 => Mode::Shared,
        2 => Mode::SharedRecursive,
        3 => Mode::Upgradable,
        4 => Mode::Permit,
        v => {
            return Err(DecodeError::Invalid(format!(
                "unknown mode {v} in a raw record"
            )))
        }
    })
}

/// Nanoseconds between two clock readings at `ns_per_tick` (32.32 fixed point): 0 if `later` is
/// not later, or if `earlier` is 0 (no reading). The recorder's writer and this reader convert
/// with this one function, so that version 3's hold times are version 2's.
#[inline]
pub fn ticks_to_ns(ns_per_tick: u64, earlier: u64, later: u64) -> u64 {
    if earlier == 0 {
        return 0;
    }
    let d = later.saturating_sub(earlier);
    // Saturates: a hostile trace's readings and scale (up to 2^64 ticks of 2^32 ns) must not
    // wrap into a short hold.
    u64::try_from((u128::from(d) * u128::from(ns_per_tick)) >> 32).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Readings and a scale beyond any clock give the longest hold, not a wrapped short one.
    #[test]
    fn ticks_to_ns_saturates() {
        assert_eq!(ticks_to_ns(u64::MAX, 1, u64::MAX), u64::MAX);
        assert_eq!(ticks_to_ns(2 << 32, 1, 11), 20);
    }

    fn rec(kind: u8, class: u32, a: u64, b: u64, x: u64, ts: u64) -> Vec<u8> {
        let head = u64::from(kind) | u64::from(class) << 32;
        [head, a, b, x, ts]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect()
    }

    /// A site word, the clock, a block (acquire, release, a drop skipped), the end: the events,
    /// the hold time from the readings at the declared scale, the statistics.
    fn file() -> Vec<u8> {
        let mut out = Vec::new();
        encode_site_word(&mut out, 0xabc0, 4);
        encode_clock(&mut out, 2 << 32);
        let recs = [
            rec(K_ACQUIRE, 9, 5, 0xabc0, 7, 100),
            rec(K_DROP, 9, 6, 0, 0, 0),
            rec(K_RELEASE, 9, 5, 0, 0, 130),
        ];
        encode_block_head(&mut out, 3, recs.len());
        recs.iter().for_each(|r| out.extend_from_slice(r));
        encode_end(&mut out);
        out
    }

    fn decode_all(d: &mut RawDecoder, mut buf: &[u8]) -> Result<Vec<Event>, DecodeError> {
        let mut out = Vec::new();
        while let Some(n) = d.decode(buf, &mut out)? {
            buf = &buf[n..];
        }
        assert!(buf.is_empty());
        Ok(out)
    }

    #[test]
    fn a_block_reads_as_its_events_with_hold_times_and_statistics() {
        let ev = decode_all(&mut RawDecoder::new(), &file()).unwrap();
        assert_eq!(
            ev,
            vec![
                Event::Acquire {
                    t: 3,
                    l: 5,
                    m: Mode::Exclusive,
                    how: How::Blocking,
                    s: Some(4),
                    wait_ns: 7
                },
                Event::Release {
                    t: 3,
                    l: 5,
                    hold_ns: 60
                },
                Event::Stats {
                    c: 9,
                    stats: ClassStats {
                        acquisitions: 1,
                        contended: 1,
                        wait_total_ns: 7,
                        wait_max_ns: 7,
                        hold_total_ns: 60,
                        hold_max_ns: 60,
                    }
                },
            ]
        );
    }

    /// The hold times of the releases in `ev`, in order.
    fn holds(ev: &[Event]) -> Vec<u64> {
        ev.iter()
            .filter_map(|e| match e {
                Event::Release { hold_ns, .. } => Some(*hold_ns),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_hold_is_measured_however_deep_and_whichever_thread_releases() {
        let mut out = Vec::new();
        encode_site_word(&mut out, 0xabc0, 4);
        encode_clock(&mut out, 1 << 32);
        // Thread 1 nests 100 locks (more than version 2's writer kept) and releases them all.
        let mut recs: Vec<_> = (0..100)
            .map(|l| rec(K_ACQUIRE, 1, 1000 + l, 0xabc0, 0, 10 + l))
            .collect();
        recs.extend(
            (0..100)
                .rev()
                .map(|l| rec(K_RELEASE, 1, 1000 + l, 0, 0, 1000)),
        );
        // A lock taken by thread 1 and released by thread 2 (a guard sent across).
        recs.push(rec(K_ACQUIRE, 2, 7, 0xabc0, 0, 2000));
        encode_block_head(&mut out, 1, recs.len());
        recs.iter().for_each(|r| out.extend_from_slice(r));
        encode_block_head(&mut out, 2, 1);
        out.extend_from_slice(&rec(K_RELEASE, 2, 7, 0, 0, 2500));
        let mut d = RawDecoder::new();
        let ev = decode_all(&mut d, &out).unwrap();
        let mut want: Vec<u64> = (0..100).rev().map(|l| 1000 - (10 + l)).collect();
        want.push(500);
        assert_eq!(holds(&ev), want);
        assert!(d.held.is_empty(), "nothing held is kept: {:?}", d.held);
    }

    /// Version 4: an acquisition with [`REQUESTED`] reads as its request then itself, exactly as
    /// the two records of version 3 do (same events, same statistics and hold times).
    #[test]
    fn a_requested_acquisition_reads_as_the_request_and_the_acquisition() {
        let read = |recs: &[Vec<u8>]| {
            let mut out = Vec::new();
            encode_site_word(&mut out, 0xabc0, 4);
            encode_clock(&mut out, 1 << 32);
            encode_block_head(&mut out, 3, recs.len());
            recs.iter().for_each(|r| out.extend_from_slice(r));
            encode_end(&mut out);
            decode_all(&mut RawDecoder::new(), &out).unwrap()
        };
        let shared = 1 << 8;
        let mut folded = rec(K_ACQUIRE, 9, 5, 0xabc0, 0, 100);
        let head = u64::from(K_ACQUIRE) | shared | REQUESTED | 9 << 32;
        folded[..8].copy_from_slice(&head.to_le_bytes());
        let mut request = rec(K_REQUEST, 9, 5, 0xabc0, 0, 0);
        request[1] = 1;
        let mut acquire = rec(K_ACQUIRE, 9, 5, 0xabc0, 0, 100);
        acquire[1] = 1;
        let release = rec(K_RELEASE, 9, 5, 0, 0, 150);
        let two = read(&[request, acquire, release.clone()]);
        assert_eq!(read(&[folded, release]), two);
        assert!(matches!(
            two[..2],
            [
                Event::Request {
                    t: 3,
                    l: 5,
                    m: Mode::Shared,
                    s: Some(4),
                    n: 1,
                    short: None
                },
                Event::Acquire { .. }
            ]
        ));
    }

    #[test]
    fn a_block_head_counts_the_thread_number_s_bytes() {
        for t in [0, 1, 127, 128, 1 << 20, 1 << 62 | 5, u64::MAX] {
            let mut out = Vec::new();
            encode_block_head(&mut out, t, 1);
            out.extend_from_slice(&rec(K_JOIN, 1, 5, 0, 0, 0));
            let mut got = Vec::new();
            assert_eq!(
                RawDecoder::new().decode(&out, &mut got),
                Ok(Some(out.len()))
            );
            assert_eq!(
                got,
                vec![Event::Join {
                    t,
                    child: 5,
                    scope: false
                }]
            );
        }
    }

    #[test]
    fn a_cut_block_keeps_its_whole_records_only() {
        let bytes = file();
        // The block's head starts after the site word and the clock, its records 3 bytes on.
        let mut before = Vec::new();
        encode_site_word(&mut before, 0xabc0, 4);
        encode_clock(&mut before, 2 << 32);
        let recs = before.len() + 3;
        // (cut, events, whole records): the second record, a drop, makes no event.
        for (cut, want, whole) in [(recs + 39, 0, 0), (recs + 40, 1, 1), (recs + 119, 1, 2)] {
            let mut d = RawDecoder::new();
            let mut buf = &bytes[..cut];
            let mut out = Vec::new();
            while let Ok(Some(n)) = d.decode(buf, &mut out) {
                buf = &buf[n..];
            }
            assert_eq!(d.decode(buf, &mut out), Err(DecodeError::Truncated));
            let n = d.salvage(buf, &mut out).unwrap();
            assert_eq!(out.len(), want, "cut at {cut}");
            assert_eq!(
                n,
                if whole == 0 {
                    0
                } else {
                    3 + whole * RECORD_BYTES
                }
            );
        }
    }

    #[test]
    fn an_undeclared_site_or_an_unknown_kind_is_an_error() {
        for r in [rec(K_ACQUIRE, 1, 5, 0x99, 0, 0), rec(77, 1, 5, 0, 0, 0)] {
            let mut out = Vec::new();
            encode_block_head(&mut out, 1, 1);
            out.extend_from_slice(&r);
            assert!(matches!(
                decode_all(&mut RawDecoder::new(), &out),
                Err(DecodeError::Invalid(_))
            ));
        }
        let mut out = Vec::new();
        encode_block_head(&mut out, 1, 1);
        out.extend_from_slice(&rec(K_JOIN, 1, 5, 0, 0, 0)[..39]);
        out[0] -= 1;
        assert!(matches!(
            decode_all(&mut RawDecoder::new(), &out),
            Err(DecodeError::Invalid(_))
        ));
    }

    /// The short records of version 5 (three words, two words), each for its version-4 twin.
    fn short_acquire(shape: u64, class: u32, l: u64, mode: u64, site: u64, ts: u64) -> Vec<u8> {
        let w0 = l | u64::from(class) << SHORT_LOCK_BITS | shape << SHAPE_SHIFT;
        [w0, site | mode, ts]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect()
    }

    fn short_release(class: u32, l: u64, ts: u64) -> Vec<u8> {
        let w0 = l | u64::from(class) << SHORT_LOCK_BITS | SHORT_RELEASE << SHAPE_SHIFT;
        [w0, ts].iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// A version-5 file (without its magic) of `recs` for thread 3, and the same records' events
    /// as version 4 reads them from `long`.
    fn v5_and_v4(short: &[Vec<u8>], long: &[Vec<u8>]) -> (Vec<u8>, Vec<Event>) {
        let frame = |recs: &[Vec<u8>]| {
            let mut out = Vec::new();
            encode_site_word(&mut out, 0xabc0, 4);
            encode_site_word(&mut out, 0xabc8, 5);
            encode_clock(&mut out, 3 << 31);
            let bytes: Vec<u8> = recs.concat();
            encode_block_head_bytes(&mut out, 3, bytes.len());
            out.extend(bytes);
            encode_end(&mut out);
            out
        };
        let v4 = decode_all(&mut RawDecoder::for_version(4), &frame(long)).unwrap();
        (frame(short), v4)
    }

    /// A nested pair in version 5's short records (the inner acquisition with its request
    /// folded in, a shared one) among long ones: the events, hold times and statistics of the
    /// same records in version 4.
    fn nested_pair() -> (Vec<u8>, Vec<Event>) {
        let shared = 1;
        let mut requested = rec(K_ACQUIRE, 9, 6, 0xabc8, 0, 105);
        requested[..8].copy_from_slice(
            &(u64::from(K_ACQUIRE) | shared << 8 | REQUESTED | 9 << 32).to_le_bytes(),
        );
        let mut shared_b = rec(K_ACQUIRE, 9, 6, 0xabc8, 0, 300);
        shared_b[1] = 1;
        v5_and_v4(
            &[
                short_acquire(SHORT_ACQUIRE, 9, 5, 0, 0xabc0, 100),
                short_acquire(SHORT_REQUESTED, 9, 6, shared, 0xabc8, 105),
                short_release(9, 6, 150),
                rec(K_FAIL, 9, 7, 0xabc0, 12, 0),
                short_release(9, 5, 170),
                short_acquire(SHORT_ACQUIRE, 9, (1 << 40) - 1, shared, 0xabc8, 300),
                rec(K_JOIN, 1, 5, 0, 0, 0),
            ],
            &[
                rec(K_ACQUIRE, 9, 5, 0xabc0, 0, 100),
                requested,
                rec(K_RELEASE, 9, 6, 0, 0, 150),
                rec(K_FAIL, 9, 7, 0xabc0, 12, 0),
                rec(K_RELEASE, 9, 5, 0, 0, 170),
                {
                    let mut r = rec(K_ACQUIRE, 9, (1 << 40) - 1, 0xabc8, 0, 300);
                    r[1] = 1;
                    r
                },
                rec(K_JOIN, 1, 5, 0, 0, 0),
            ],
        )
    }

    #[test]
    fn short_records_read_as_their_version_4_twins() {
        let (v5, want) = nested_pair();
        assert_eq!(want.len(), 9, "{want:#?}");
        assert!(want.contains(&Event::Release {
            t: 3,
            l: 6,
            hold_ns: 67
        }));
        assert_eq!(
            decode_all(&mut RawDecoder::for_version(5), &v5).unwrap(),
            want
        );
        // Version 4 has no short records: the same bytes are not read as version 5's.
        assert_ne!(
            decode_all(&mut RawDecoder::for_version(4), &v5).ok(),
            Some(want)
        );
    }

    /// A version-5 file cut at every byte: the events of its complete records, a prefix of the
    /// whole file's, and never an error but the cut (every whole record of a cut block is kept).
    #[test]
    fn a_version_5_file_cut_anywhere_reads_as_a_prefix() {
        let (v5, want) = nested_pair();
        let mut seen = Vec::new();
        for cut in 0..=v5.len() {
            let mut d = RawDecoder::for_version(5);
            let mut buf = &v5[..cut];
            let mut out = Vec::new();
            loop {
                match d.decode(buf, &mut out) {
                    Ok(Some(n)) => buf = &buf[n..],
                    Ok(None) => break,
                    Err(DecodeError::Truncated) => {
                        let n = d.salvage(buf, &mut out).unwrap();
                        assert!(n <= buf.len());
                        break;
                    }
                    Err(e) => panic!("cut at {cut}: {e}"),
                }
            }
            assert_eq!(out[..], want[..out.len()], "cut at {cut}");
            seen.push(out.len());
        }
        // Every record of the block is salvaged as soon as it is whole: the counts go up by its
        // events (two for the folded request), then the stats come with `end`.
        seen.dedup();
        assert_eq!(seen, [0, 1, 3, 4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn an_unknown_shape_or_a_record_over_its_block_is_an_error() {
        for bad in [
            // Shapes 4 to 7 are not version 5's.
            [5u64 | 4 << SHAPE_SHIFT, 0, 0]
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect(),
            // A short release cut after its first word, inside a complete block.
            short_release(1, 5, 9)[..8].to_vec(),
            // A mode of no known code.
            short_acquire(SHORT_ACQUIRE, 1, 5, 6, 0xabc0, 1),
        ] {
            let (v5, _) = v5_and_v4(&[bad], &[]);
            assert!(
                matches!(
                    decode_all(&mut RawDecoder::for_version(5), &v5),
                    Err(DecodeError::Invalid(_))
                ),
                "{v5:?}"
            );
        }
    }

    /// Any byte changed to any value, and any cut: an error or events, never a panic (the
    /// numbers are the file's: sums saturate).
    #[test]
    fn corrupt_bytes_are_errors_not_panics() {
        for (version, bytes) in [(4, file()), (5, nested_pair().0)] {
            corrupt(version, &bytes);
        }
    }

    fn corrupt(version: u8, bytes: &[u8]) {
        for i in 0..bytes.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff, 0x20, 0x60, TAG_BLOCK, TAG_END] {
                let mut b = bytes.to_vec();
                b[i] = v;
                let mut d = RawDecoder::for_version(version);
                let mut out = Vec::new();
                let mut rest = &b[..];
                while let Ok(Some(n)) = d.decode(rest, &mut out) {
                    rest = &rest[n..];
                }
                let _ = d.salvage(rest, &mut out);
            }
        }
    }
}
