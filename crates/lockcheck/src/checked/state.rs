//! Per-thread state: the held stack, the known-dependency cache, the thread's number and vector
//! clock, and the "inside lockcheck" flag that makes lockcheck's own nested acquisitions plain.

use super::class::Ids;
use crate::config::ThreadSwitch;
use lockcheck_core::deps::VectorClock;
use lockcheck_core::trace::Mode;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::collections::HashSet;
use std::mem::ManuallyDrop;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// One lock held by this thread.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Held {
    pub inst: u64,
    pub class: u32,
    pub mode: Mode,
    pub site: &'static Location<'static>,
    /// Acquisition time, when hold times are measured (recording, statistics, watchdog).
    pub since: Option<std::time::Instant>,
    /// A dependency from this lock reached the global graph: dropping the lock must remove it.
    pub source: bool,
    /// Its acquisition went to the trace being recorded: so must its release (the general
    /// path; the flag keeps the release fast path a single comparison).
    pub recorded: bool,
    /// Who took it in async code (`crate::tokio::track::current_tag`: a task, a runtime's root
    /// future, or 0 outside any runtime), to tell a guard held across an `.await` by a suspended
    /// task from this thread's own holds.
    #[cfg(feature = "tokio")]
    pub task: u64,
}

/// Bits of a held entry's logical word: `inst | mode << 40 | flags`. [`HeldStack`] stores it
/// combined with the lock's identity word (see [`entry`]); the release fast path compares the
/// whole stored word with [`entry`]`(identity, mode)`, so any flag sends it the general way.
pub(crate) mod word {
    /// The instance number (40 bits, see `class::INST_BITS`).
    pub const INST: u64 = (1 << 40) - 1;
    /// Instance and mode: what a dependency (and the cache) is about.
    pub const KEY: u64 = (1 << 43) - 1;
    /// A dependency from this lock reached the global graph ([`super::Held::source`]).
    pub const SOURCE: u64 = 1 << 48;
    /// The acquisition was timed: the parallel entry's `since` is set.
    pub const TIMED: u64 = 1 << 49;
    /// The acquisition was recorded ([`super::Held::recorded`]).
    pub const RECORDED: u64 = 1 << 51;
    /// Held through a failed `try_*` of this thread (set by
    /// [`super::ThreadState::mark_spun`]): a failed try that finds every held entry marked knows
    /// that none was released (and taken again) since the previous one. Not in [`super::Held`]:
    /// a push (or any rewrite from a `Held`) clears it, which is the point.
    pub const SPUN: u64 = 1 << 47;
    /// Taken in async code ([`super::Held::task`] is not 0).
    #[cfg(feature = "tokio")]
    pub const TASK: u64 = 1 << 50;
    /// Every bit a logical word may have (none of the identity's own flags, bits 62 and 63).
    pub const LOGICAL: u64 = (1 << 52) - 1;
    /// Set in a shared entry's stored word, the complement of the identity (see
    /// [`super::entry`]), and in no other stored word: an identity never has it
    /// (`class::NEVER_SET`), and no mode or flag bit is it.
    pub const FLIPPED: u64 = crate::checked::class::NEVER_SET;
    const _: () = assert!(FLIPPED & LOGICAL == 0);
}

/// The word [`HeldStack`] stores for an entry of logical word `inst | mode << 40 | flags` whose
/// lock has the identity word `ids` (`Meta::word`, `inst` in its low bits): the identity with the
/// mode and flags flipped in, `ids ^ (mode << 40 | flags)`, except that a shared entry stores the
/// complement, `!ids ^ flags` (one `not`, where `1 << 40` is a 64-bit constant to load: one
/// instruction less on the push and on the release; [`word::FLIPPED`] tells it apart, an
/// identity never has that bit). For an exclusive or shared entry without flags that is the
/// identity word itself or its complement: the fast path pushes it and the release compares it
/// without masking the instance out, and neither writes the identity beside it (see
/// [`HeldStack::ids_of`]). Flags are flipped in the same way (`entry(..) ^ flag`); the logical
/// word is [`logical_of`]. A lock's identity gains a flag bit of its own at most twice
/// (`class::IN_GRAPH`, `WRITTEN`): an entry pushed before that no longer equals
/// `entry(ids_now, mode)`, which only sends its release the general way (which compares logical
/// words).
///
/// With async tracking (feature `tokio`) a shared entry keeps the first form: its fast push
/// flips the task's tag in by a select, which LLVM turns into a mask of `sbb` and `or` over the
/// complement (2 instructions more than the release's saving; measured). The decoders read both
/// forms ([`word::FLIPPED`] is never set then).
#[inline(always)]
pub(crate) fn entry(ids: u64, mode: Mode) -> u64 {
    if mode == Mode::Shared && SHARED_COMPLEMENT {
        !ids
    } else {
        ids ^ ((mode as u64) << 40)
    }
}

/// Whether a shared entry stores the identity's complement (see [`entry`]).
const SHARED_COMPLEMENT: bool = !cfg!(feature = "tokio");

/// Whether a fast push of the stored word `w` for the identity `ids` must also store `ids`
/// ([`HeldStack::ids_of`] recovers it otherwise): known at compile time (an exclusive hold's word
/// is its identity, a shared hold's its complement) but in async code, whose push always writes it.
#[inline(always)]
fn word_lacks_ids(w: u64, ids: u64) -> bool {
    (w != ids && w != !ids) || cfg!(feature = "tokio")
}

/// A stored word in [`entry`]'s first form, `ids ^ (mode << 40 | flags)` (a shared entry's
/// complement undone): its low bits are the instance.
#[inline(always)]
fn unflipped(w: u64) -> u64 {
    if w & word::FLIPPED != 0 {
        !w ^ ((Mode::Shared as u64) << 40)
    } else {
        w
    }
}

/// The logical word (`inst | mode << 40 | flags`) of the stored word `w` of a lock whose identity
/// word is `ids` (its flags, bits 62 and 63, may be older than the entry's: masked out).
#[inline(always)]
fn logical_of(w: u64, ids: u64) -> u64 {
    (unflipped(w) ^ (ids & !word::INST)) & word::LOGICAL
}

/// The stored word of logical word `l` for a lock whose identity word is `ids`: [`entry`]
/// with the flags of `l` flipped in.
#[inline]
fn stored_of(l: u64, ids: u64) -> u64 {
    let w = l ^ (ids & !word::INST);
    if mode_of(l) == Mode::Shared && SHARED_COMPLEMENT {
        !(w ^ ((Mode::Shared as u64) << 40))
    } else {
        w
    }
}

/// Whether the stored words (or requests, see [`entry`]) `a` and `b` are about one instance.
#[inline]
fn same_instance(a: u64, b: u64) -> bool {
    (unflipped(a) ^ unflipped(b)) & word::INST == 0
}

/// The mode stored in bits 40..43 of a held word.
#[inline]
fn mode_of(w: u64) -> Mode {
    match (w >> 40) & 7 {
        0 => Mode::Exclusive,
        1 => Mode::Shared,
        2 => Mode::SharedRecursive,
        3 => Mode::Upgradable,
        _ => Mode::Permit,
    }
}

/// What a held entry keeps besides its word, written only when needed: the site pointer and the
/// lock's identity word (the class is read from the identity only when needed; not written by
/// the fast exclusive push, see [`HeldStack::ids_of`]), the time only when timed, the task only
/// in async code.
#[derive(Clone, Copy)]
struct Info {
    site: &'static Location<'static>,
    /// The lock's [`Meta::word`](super::class::Meta::word) when acquired (its class), or what an
    /// earlier entry left in this slot (see [`HeldStack::ids_of`]).
    ids: u64,
    since: Option<std::time::Instant>,
    #[cfg(feature = "tokio")]
    task: u64,
}

const NO_INFO: Info = Info {
    site: Location::caller(),
    ids: 0,
    since: None,
    #[cfg(feature = "tokio")]
    task: 0,
};

/// Locks kept inline per thread. Deeper nesting moves the whole stack to the heap (the slow
/// path); fixed inline arrays keep the thread-local free of destructors, which makes every
/// access to it a plain thread-pointer offset instead of a lazily registered slot.
/// The analyzer mirrors it for the marks of a failed try (`RUNTIME_INLINE_HELD` in its `model.rs`).
pub(crate) const INLINE_HELD: usize = 32;

/// The slots of [`HeldStack`]'s `words`: entry `i` in slot `i + 1`, slot 0 and the slots past
/// [`INLINE_HELD`] always [`NO_ENTRY`]. One slot per value of the depth byte ([`BusyDepth`]): the
/// release reads the slot of that byte and compares, with no range test (an empty or spilled
/// stack meets [`NO_ENTRY`], and so does a busy thread's byte, which sends its releases the
/// general way). 2 KB per thread: indexed by a byte, the slot needs neither a mask nor a bounds
/// check.
const WORD_SLOTS: usize = 256;

/// What [`HeldStack`]'s `words` hold where no entry is (slot 0, the slots past
/// [`INLINE_HELD`]): a word that neither a held entry nor the release's [`entry`] of a lock
/// without an identity ever equals, so that the release fast path compares the top's slot
/// before it tests the identity for 0 (`hooks::release_kind`: two instructions less per checked
/// release). Instance 0, which no identity has (`class::next_from`), so no exclusive entry (its
/// identity, flags flipped in) is it; bit 61 clear, which every shared complement has
/// ([`word::FLIPPED`]); and neither 0 nor `!0` nor `1 << 40` (an unassigned identity's
/// [`entry`] in the modes), also with `word::TASK` (a `tokio` feature's bit, hence no link) masked off as the `tokio`
/// release does.
const NO_ENTRY: u64 = 1 << 62;
const _: () = assert!(NO_ENTRY & word::INST == 0 && NO_ENTRY & word::FLIPPED == 0);
const _: () = assert!(NO_ENTRY & word::LOGICAL == 0 && NO_ENTRY != 0 && NO_ENTRY != !0);
const _: () = assert!(INLINE_HELD < SPILLED && SPILLED < BUSY as usize);

/// The held stack, oldest first: inline while shallow, on the heap ("spilled") while deeper than
/// [`INLINE_HELD`]. Any depth is tracked: an untracked lock would make its release look foreign,
/// hide a later self-deadlock on it and unbalance the trace.
///
/// Inline, one word per entry (see [`entry`]) in `words`, the rest in the parallel `info`: the
/// fast path's push is one word, a site and the identity, its pop one comparison.
///
/// Only [`ThreadState`]'s methods touch it, under the single-owner discipline stated there.
pub(crate) struct HeldStack {
    words: [u64; WORD_SLOTS],
    /// The nested fast path's memo for one held lock: `known_req` (a request,
    /// [`entry`]`(ids, mode)`) was checked against the graph over exactly one held entry whose word
    /// was `known_base`, in the current clock epoch, that instance not being the held one and the
    /// entry not tagged by an async task; 0 when none. Nothing else keeps it current: a hit
    /// compares the live entry with `known_base` (see [`ThreadState::known_top`]), so a push, a
    /// removal or a mode change of the entry makes it miss by itself; an epoch bump clears it.
    known_base: u64,
    known_req: u64,
    /// The same for the look-up in the dependency cache over one held entry
    /// ([`ThreadState::known_dependency_one`], the recorded way's): `key_req` (packed,
    /// `inst | mode << 40`, as the cache keys it) was found in the cache over the entry whose
    /// word was `key_base`, in this epoch (or remembered by [`ThreadState::remember_top`]);
    /// 0 when none. Kept apart from `known_req`, which a cache hit cannot write (it needs the
    /// requested lock's identity word).
    key_base: u64,
    key_req: u64,
    info: [Info; INLINE_HELD],
    /// Every entry while spilled (empty while inline; unallocated until the first spill, then
    /// kept for the thread's life so that no release ever frees it). `ManuallyDrop` keeps the
    /// thread-local free of destructors; the area is given back when the stack shrinks back, or
    /// at thread exit (see [`SlowState`]'s `Drop`), never while the stack is borrowed.
    spill: ManuallyDrop<Vec<Held>>,
}

/// The depth ([`BusyDepth::n`]) while the entries live on the heap.
const SPILLED: usize = 0x3f;

/// The thread's "busy inside lockcheck" flag and the held stack's depth, in one byte:
/// `n | BUSY`, so that the fast path tests "not busy and nothing held" (the byte is 0) or "not
/// busy and one lock held" (the byte is 1) in one comparison. `n` is the number of entries while
/// inline (at most [`INLINE_HELD`]), [`SPILLED`] while they live in the spill area. A byte, so
/// that the release loads it and indexes `words` with it in one instruction; its sign bit is
/// never set, so that the fast path can `or` it with the switch byte and read
/// [`fast::RAW`](crate::config::fast::RAW) in the result's sign (see `hooks::lock_fast`).
///
/// The flag's API is `Cell<bool>`'s (`get`, `set`, `replace`), for the code that marks the thread
/// busy; the depth is the held stack's, reached only through [`ThreadState`]'s accessors.
pub(crate) struct BusyDepth(Cell<u8>);

/// The busy flag's bit in [`BusyDepth`] (above any depth, [`SPILLED`] included, below the sign).
const BUSY: u8 = 0x40;

impl BusyDepth {
    const fn new() -> BusyDepth {
        BusyDepth(Cell::new(0))
    }

    /// Whether lockcheck itself runs on this thread.
    #[inline(always)]
    pub(crate) fn get(&self) -> bool {
        self.0.get() & BUSY != 0
    }

    /// Marks this thread busy inside lockcheck, or not.
    #[inline(always)]
    pub(crate) fn set(&self, busy: bool) {
        let w = self.0.get() & !BUSY;
        self.0.set(if busy { w | BUSY } else { w });
    }

    /// [`BusyDepth::set`], returning the flag before.
    #[inline(always)]
    pub(crate) fn replace(&self, busy: bool) -> bool {
        let was = self.get();
        self.set(busy);
        was
    }

    /// The held stack's depth.
    #[inline(always)]
    fn n(&self) -> usize {
        (self.0.get() & (BUSY - 1)) as usize
    }

    #[inline(always)]
    fn set_n(&self, n: usize) {
        debug_assert!(n <= SPILLED);
        self.0.set((self.0.get() & BUSY) | n as u8);
    }

    /// The whole byte: 0 when not busy with nothing held, 1 when not busy with one lock held.
    #[inline(always)]
    fn word(&self) -> u8 {
        self.0.get()
    }

    /// Takes one from the byte (the release fast path's pop; the caller saw a depth of at least
    /// 1), reading it again: the compiler then writes one `dec` of the byte in memory instead
    /// of a `dec` of the register that indexed the top's slot and a store (one instruction less
    /// per release). Relaxed atomic accesses are what it folds so (a plain load would be merged
    /// with the caller's, and the register's `dec` kept); on this thread's own byte they are
    /// plain loads and stores.
    #[inline(always)]
    fn pop(&self) {
        // SAFETY: the byte lives as long as `self`; only this thread reaches it (a thread-local),
        // so these atomic accesses race with no other access.
        let b = unsafe { AtomicU8::from_ptr(self.0.as_ptr()) };
        b.store(b.load(Ordering::Relaxed).wrapping_sub(1), Ordering::Relaxed);
    }
}

impl HeldStack {
    const fn new() -> HeldStack {
        HeldStack {
            words: [NO_ENTRY; WORD_SLOTS],
            known_base: 0,
            known_req: 0,
            key_base: 0,
            key_req: 0,
            info: [NO_INFO; INLINE_HELD],
            spill: ManuallyDrop::new(Vec::new()),
        }
    }

    fn len(&self, d: &BusyDepth) -> usize {
        let n = d.n();
        if n <= INLINE_HELD {
            n
        } else {
            self.spill.len()
        }
    }

    /// Entry `i` (< `len()`), expanded.
    fn get(&self, d: &BusyDepth, i: usize) -> Held {
        if d.n() > INLINE_HELD {
            return self.spill[i];
        }
        let (w, info) = (self.logical(i), &self.info[i]);
        Held {
            inst: w & word::INST,
            class: Ids::from_word(self.ids_of(i)).class,
            mode: mode_of(w),
            site: info.site,
            since: if w & word::TIMED != 0 {
                info.since
            } else {
                None
            },
            source: w & word::SOURCE != 0,
            recorded: w & word::RECORDED != 0,
            #[cfg(feature = "tokio")]
            task: info.task,
        }
    }

    fn set_inline(&mut self, i: usize, h: &Held) {
        let mut w = pack(h.inst, h.mode);
        if h.source {
            w |= word::SOURCE;
        }
        if h.since.is_some() {
            w |= word::TIMED;
        }
        if h.recorded {
            w |= word::RECORDED;
        }
        #[cfg(feature = "tokio")]
        if h.task != 0 {
            w |= word::TASK;
        }
        let ids = Ids {
            inst: h.inst,
            class: h.class,
        }
        .word();
        self.info[i] = Info {
            site: h.site,
            ids,
            since: h.since,
            #[cfg(feature = "tokio")]
            task: h.task,
        };
        self.words[i + 1] = stored_of(w, ids);
    }

    /// The identity word entry `i`'s stored word was made from (inline entries only). The fast
    /// push of an exclusive or shared hold without flags stores the identity or its complement as
    /// its word (see [`entry`]) and does not write `info[i].ids` (one store less), which then
    /// holds what an earlier entry of the slot left: another lock's identity (another instance:
    /// the stored word, complemented back if [`word::FLIPPED`], is the identity), or this lock's
    /// own from an earlier push (the same instance, so the same class; its flags, bits 62 and
    /// 63, may be older, which [`HeldStack::logical`] masks out). Every other push writes
    /// `info[i].ids`, whose instance is then the stored word's.
    #[inline(always)]
    fn ids_of(&self, i: usize) -> u64 {
        let (w, ids) = (self.words[i + 1], self.info[i].ids);
        // The identity if a fast push stored it; else its instance is the entry's all the same.
        let pushed = if w & word::FLIPPED != 0 { !w } else { w };
        if (pushed ^ ids) & word::INST == 0 {
            ids
        } else {
            pushed
        }
    }

    /// Entry `i`'s logical word (`inst | mode << 40 | flags`, see [`entry`]), inline entries only.
    #[inline(always)]
    fn logical(&self, i: usize) -> u64 {
        logical_of(self.words[i + 1], self.ids_of(i))
    }

    /// Sets entry `i`'s logical word, its identity unchanged (written out: see
    /// [`HeldStack::ids_of`]).
    fn set_logical(&mut self, i: usize, l: u64) {
        let ids = self.ids_of(i);
        self.info[i].ids = ids;
        self.words[i + 1] = stored_of(l, ids);
    }

    /// Pushes without allocating: `Err(capacity)` when a (larger) spill area is needed first.
    fn try_push(&mut self, d: &BusyDepth, h: &Held) -> Result<(), usize> {
        let n = d.n();
        if n < INLINE_HELD {
            self.set_inline(n, h);
            d.set_n(n + 1);
            return Ok(());
        }
        self.room_for_one(d)?;
        if d.n() == INLINE_HELD {
            // The area kept from an earlier spill is large enough: move there, no allocation.
            for i in 0..INLINE_HELD {
                let e = self.get(d, i);
                self.spill.push(e);
            }
            d.set_n(SPILLED);
        }
        // Within capacity: `Vec::push` does not allocate.
        self.spill.push(*h);
        Ok(())
    }

    /// Whether one more entry can be pushed without allocating; `Err(capacity)`: the spill area
    /// it needs first.
    fn room_for_one(&self, d: &BusyDepth) -> Result<(), usize> {
        let n = d.n();
        let room = if n == SPILLED {
            self.spill.len() < self.spill.capacity()
        } else {
            // Inline: not full, or full with the (empty) area of an earlier spill kept.
            n < INLINE_HELD || self.spill.capacity() > INLINE_HELD
        };
        if room {
            Ok(())
        } else if n == SPILLED {
            Err(2 * self.spill.capacity())
        } else {
            Err(4 * INLINE_HELD)
        }
    }

    /// Moves the entries into `fresh` if it is what [`HeldStack::try_push`] asked for (the stack
    /// may have changed since); returns the area to free, or `fresh` unused. Never allocates:
    /// `fresh` is large enough.
    fn install_spill(&mut self, d: &BusyDepth, mut fresh: Vec<Held>) -> Vec<Held> {
        let len = self.len(d);
        if fresh.capacity() <= len {
            return fresh;
        }
        if d.n() == SPILLED {
            if self.spill.len() < self.spill.capacity() {
                return fresh;
            }
            fresh.extend_from_slice(&self.spill);
        } else if d.n() == INLINE_HELD {
            if self.spill.capacity() > INLINE_HELD {
                return fresh;
            }
            for i in 0..len {
                fresh.push(self.get(d, i));
            }
        } else {
            return fresh;
        }
        d.set_n(SPILLED);
        std::mem::replace(&mut *self.spill, fresh)
    }

    /// Removes the newest entry matching `f` (the top one, usually: a pop), and returns it.
    /// Never frees: a release runs before its raw unlock, and an allocator that takes the lock
    /// being released would deadlock on it. Back inline, the spill area is kept (empty) for the
    /// next deep nesting, and freed at thread exit.
    fn remove_last(&mut self, d: &BusyDepth, f: impl Fn(&Held) -> bool) -> Option<Held> {
        if d.n() > INLINE_HELD {
            let i = self.spill.iter().rposition(&f)?;
            let h = self.spill.remove(i);
            // Back inline once comfortably shallow (half, so that nesting around the boundary
            // does not move the stack back and forth).
            if self.spill.len() <= INLINE_HELD / 2 {
                let len = self.spill.len();
                for i in 0..len {
                    let e = self.spill[i];
                    self.set_inline(i, &e);
                }
                self.spill.clear();
                d.set_n(len);
            }
            return Some(h);
        }
        let n = d.n();
        let i = (0..n).rev().find(|&i| f(&self.get(d, i)))?;
        let h = self.get(d, i);
        self.words.copy_within(i + 2..n + 1, i + 1);
        self.info.copy_within(i + 1..n, i);
        d.set_n(n - 1);
        Some(h)
    }

    /// The packed words (`inst | mode << 40`) of the held set, oldest first, for cache keys.
    fn key_word(&self, d: &BusyDepth, i: usize) -> u64 {
        if d.n() > INLINE_HELD {
            let h = &self.spill[i];
            pack(h.inst, h.mode)
        } else {
            self.logical(i) & word::KEY
        }
    }
}

/// Slots in the direct-mapped cache of dependencies this thread already checked.
const CACHE_SLOTS: usize = 256;
/// Held sets up to this size are cached inline; larger ones in [`SlowState::deep_checked`].
pub(crate) const CACHE_HELD: usize = 4;
/// Entries of the exact cache of large held sets before it is emptied (a miss costs a re-check,
/// never a missed check).
const DEEP_CACHE_MAX: usize = 4096;

/// One checked dependency, stored exactly, so a hit can never stand for another dependency.
/// Aligned to a cache line, so that a probe touches one line.
#[repr(align(64))]
struct Slot {
    /// Requested instance, mode and held-set length ([`CacheKey::lock`]); 0 when empty.
    lock: Cell<u64>,
    /// The clock epoch of the check.
    epoch: Cell<u64>,
    /// The held locks (instance and mode), oldest first.
    held: [Cell<u64>; CACHE_HELD],
}

/// The exact identity of a dependency check: the requested lock and mode, the held locks with
/// their modes, and the clock epoch. Built on the fast path, so inline up to [`CACHE_HELD`].
pub(crate) struct CacheKey {
    /// Slot index (a hash of the request and the held set; the epoch is compared, not hashed).
    pub slot: usize,
    /// `inst | mode << 40 | held_len << 44 | 1 << 63`.
    pub lock: u64,
    pub epoch: u64,
    /// Packed `inst | mode << 40` of each held lock (the first [`CACHE_HELD`] only inline).
    pub held: [u64; CACHE_HELD],
    pub len: usize,
}

/// The slot word of a request: `pack(inst, mode)` with the held set's length and a never-zero
/// bit (0 marks an empty slot).
#[inline(always)]
fn slot_lock(req: u64, len: usize) -> u64 {
    req | (((len as u64) & 0xf) << 44) | (1 << 63)
}

/// The slot of a request over a held set whose packed words sum to `set`: one multiply, the top
/// bits (multiplicative hashing). Sets with equal sums share a slot, which only evicts: the slot
/// stores the dependency exactly.
#[inline(always)]
fn slot_of(set: u64, req: u64) -> usize {
    ((set ^ req.rotate_left(21)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize
}

/// Packs an instance (40 bits) and a mode (3 bits) into one word.
#[inline]
pub(crate) fn pack(inst: u64, mode: Mode) -> u64 {
    inst | ((mode as u64) << 40)
}

/// The hot per-thread state. No field has a destructor (see [`INLINE_HELD`]).
pub(crate) struct ThreadState {
    /// This thread's copy of the fast path's switch byte (see [`ThreadSwitch`]): read in the
    /// same thread-local access as the held stack. Registered by [`register_switch`].
    pub switch: ThreadSwitch,
    /// Set while lockcheck itself runs on this thread (reports, tracing, symbol resolution);
    /// shares its word with the held stack's depth (see [`BusyDepth`]).
    pub busy: BusyDepth,
    /// Set while a condvar wait retakes its mutex: a panic then must wait until the mutex is
    /// held again (the caller's guard would otherwise unlock a mutex another thread owns).
    pub relocking: Cell<bool>,
    /// The held stack, under a single-owner discipline instead of a `RefCell` (whose flag cost
    /// the fast path a load, a test and two stores per acquisition and per release):
    ///
    /// **The stack is only ever reached through the methods of [`ThreadState`] below, and each
    /// of them holds its reference for straight-line code that neither allocates, frees, nor
    /// calls anything outside this module** (no hook, no recorder, no report, no user code, no
    /// closure that could do any of these: the predicates passed in are field comparisons), and
    /// that cannot panic (a panic hook is a call-out too: indices are checked before use).
    ///
    /// The thread-local is per thread, so only this thread can reach it; within the thread,
    /// the only ways to re-enter lockcheck are call-outs (a global allocator or a `tracing`
    /// subscriber taking an instrumented lock, a panic hook, a signal handler running lock code
    /// is not supported by parking_lot either). With no call-out while a reference is live, no
    /// second reference can ever exist at the same time: the `&mut` is unique. The two
    /// allocating operations keep their allocation outside: a push past the inline array asks
    /// for a spill area, which is allocated with no reference live and then installed
    /// ([`ThreadState::push`]); a snapshot sizes its vector first and fills it after
    /// ([`ThreadState::held_snapshot`]); areas given back are freed after the reference ends.
    held: UnsafeCell<HeldStack>,
    /// (held set, lock, mode, clock epoch) already checked against the global graph, stored
    /// exactly. Direct-mapped: a collision evicts, which only costs a re-check.
    cache: [Slot; CACHE_SLOTS],
    id: Cell<u64>,
    /// Bumped whenever the vector clock changes (spawn/join), so cached keys stay exact; only
    /// through [`ThreadState::bump_epoch`], which also clears the held stack's memo.
    epoch: Cell<u64>,
    /// How many `try_*` or timed acquisitions failed in a row with the key
    /// [`SlowState::try_retried`] holds (0 after a successful one): see
    /// `hooks::failed_try_retried`.
    pub try_streak: Cell<u32>,
}

/// The per-thread state only slow paths touch (it has destructors).
#[derive(Default)]
pub(crate) struct SlowState {
    pub clock: VectorClock,
    /// The held list mirrored for the watchdog (only with the watchdog on).
    pub published: Option<std::sync::Arc<super::watch::Published>>,
    /// Statistics of this thread (only with statistics on).
    pub stats: Option<std::sync::Arc<super::watch::ThreadStats>>,
    /// The panic a condvar relock deferred until its mutex is held again.
    pub deferred: Option<super::report::Verdict>,
    /// Checked dependencies with more than [`CACHE_HELD`] held locks, exactly (bounded).
    pub deep_checked: HashSet<(u64, u64, Vec<u64>)>,
    /// The held stack spilled to the heap (its area is kept once back inline): free it at
    /// thread exit.
    pub owns_spill: bool,
    /// This thread's name for dependency records (by thread number).
    pub name: Option<(u64, std::sync::Arc<str>)>,
    /// [`ThreadState::switch`] is registered: unregister it at thread exit.
    pub switch_registered: bool,
    /// The last failed `try_*` or timed acquisition: (instance, mode, site address, held set
    /// digest); [`ThreadState::try_streak`] counts its failures in a row
    /// (`hooks::failed_try_retried`).
    pub try_retried: (u64, u8, usize, u64),
}

impl Drop for SlowState {
    fn drop(&mut self) {
        if self.switch_registered {
            // Before the thread's memory goes away: no refresh writes to it after this.
            let _ = STATE.try_with(|s| s.switch.unregister());
        }
        if let Some(t) = self.stats.take() {
            // Its statistics go into the sum of ended threads: the registry keeps live ones.
            super::watch::stats_thread_ended(&t);
        }
        if self.owns_spill {
            // The thread ends while deeply nested: give the entries up (a later release of one of
            // them is taken as foreign, which is harmless) and free the heap area.
            let area = STATE.try_with(ThreadState::take_spill);
            drop(area);
        }
    }
}

static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

thread_local! {
    pub(crate) static STATE: ThreadState = const {
        ThreadState {
            switch: ThreadSwitch::new(),
            busy: BusyDepth::new(),
            relocking: Cell::new(false),
            held: UnsafeCell::new(HeldStack::new()),
            cache: [const {
                Slot {
                    lock: Cell::new(0),
                    epoch: Cell::new(0),
                    held: [const { Cell::new(0) }; CACHE_HELD],
                }
            }; CACHE_SLOTS],
            id: Cell::new(0),
            epoch: Cell::new(0),
            try_streak: Cell::new(0),
        }
    };
    static SLOW: RefCell<SlowState> = RefCell::new(SlowState::default());
}

// The fast path relies on this: no destructor, so no lazy registration and no state check on
// access.
const _: () = assert!(!std::mem::needs_drop::<ThreadState>());

/// Registers this thread's copy of the switch byte ([`ThreadState::switch`]) so that switch
/// changes reach it; until then it sends every acquisition the full way, which calls this.
/// Once per thread; skipped while busy inside lockcheck or while the slow state is borrowed or
/// gone (a later full-path acquisition tries again, or, at thread exit, never: the full path).
#[cold]
#[inline(never)]
pub(crate) fn register_switch() {
    // A lock this thread takes may be held across a fork by another thread (`fork`).
    super::fork::register();
    // Busy: an acquisition made meanwhile (a locking allocator under the slow state's first
    // use) is plain and does not come back here.
    let _ = as_busy(|s| {
        with_slow(|slow| {
            if !slow.switch_registered {
                // SAFETY: `s.switch` lives in this thread's `STATE`, which has no destructor and
                // stays valid until the thread is gone; the slow state's destructor, which runs
                // before that, unregisters it.
                unsafe { s.switch.register() };
                slow.switch_registered = true;
            }
        })
    });
}

/// Runs `f` on this thread's slow state (None during thread teardown or re-entry).
pub(crate) fn with_slow<R>(f: impl FnOnce(&mut SlowState) -> R) -> Option<R> {
    SLOW.try_with(|s| s.try_borrow_mut().ok().map(|mut s| f(&mut s)))
        .ok()
        .flatten()
}

/// The held stack's accessors: the only code that dereferences [`ThreadState::held`]. Each one
/// holds its reference for straight-line code with no call-out (see the field's invariant).
impl ThreadState {
    /// The stack, shared. SAFETY (for callers in this block): no call-out while it is live.
    #[inline(always)]
    fn stack(&self) -> &HeldStack {
        // SAFETY: see `held`'s invariant; no `&mut` is live (none spans a call-out).
        unsafe { &*self.held.get() }
    }

    /// The stack, exclusive. SAFETY (for callers in this block): no call-out while it is live.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    fn stack_mut(&self) -> &mut HeldStack {
        // SAFETY: see `held`'s invariant; no other reference is live (none spans a call-out).
        unsafe { &mut *self.held.get() }
    }

    /// Whether this thread holds any tracked lock.
    #[inline(always)]
    pub(crate) fn holds_any(&self) -> bool {
        // A spilled stack holds more than `INLINE_HELD / 2` entries (see `remove_last`).
        self.busy.n() != 0
    }

    /// The fast path's one test: 0 when this thread is not busy inside lockcheck and holds
    /// nothing, 1 when it is not busy and holds one lock, anything else otherwise.
    #[inline(always)]
    pub(crate) fn busy_depth(&self) -> u8 {
        self.busy.word()
    }

    /// The number of locks held.
    pub(crate) fn held_len(&self) -> usize {
        self.stack().len(&self.busy)
    }

    /// A digest of the held set (each entry's instance, mode and site, in order): equal digests
    /// of two moments tell a retry loop that holds the same locks at the same places (see
    /// `hooks::failed_try_retried`). Arithmetic only, no call-out.
    pub(crate) fn held_digest(&self) -> u64 {
        let (st, d) = (self.stack(), &self.busy);
        let mut x: u64 = 0xcbf2_9ce4_8422_2325;
        for h in (0..st.len(d)).map(|i| st.get(d, i)) {
            let site = h.site as *const Location<'static> as u64;
            for part in [h.inst, h.mode as u64, site] {
                x = (x ^ part).wrapping_mul(0x0100_0000_01b3);
            }
        }
        x
    }

    /// The fast path's push onto an empty stack: one word (`w`: [`entry`]`(ids, mode)`), the
    /// site and the identity (`ids`: the lock's `Meta::word`; not written when it is the word,
    /// see [`HeldStack::ids_of`]). The caller saw [`ThreadState::busy_depth`] 0. With async
    /// tracking, `task` is the entry's tag (see `Held::task`).
    #[inline(always)]
    pub(crate) fn push_first(
        &self,
        w: u64,
        ids: u64,
        site: &'static Location<'static>,
        #[cfg(feature = "tokio")] task: u64,
    ) {
        let st = self.stack_mut();
        st.words[1] = w;
        st.info[0].site = site;
        if word_lacks_ids(w, ids) {
            st.info[0].ids = ids;
        }
        #[cfg(feature = "tokio")]
        {
            st.info[0].task = task;
        }
        self.busy.0.set(1);
    }

    /// The fast path's push over one held lock (the caller saw [`ThreadState::busy_depth`] 1):
    /// as [`ThreadState::push_first`], one entry up.
    /// With async tracking, the entry's tag is 0 (a task's nested acquisitions take the full
    /// path).
    #[inline(always)]
    pub(crate) fn push_second(&self, w: u64, ids: u64, site: &'static Location<'static>) {
        let st = self.stack_mut();
        // Not in `push_first`'s order: the compiler would merge the two into one sequence of
        // stores through computed offsets (five more instructions on both).
        self.busy.0.set(2);
        if word_lacks_ids(w, ids) {
            st.info[1].ids = ids;
        }
        st.info[1].site = site;
        #[cfg(feature = "tokio")]
        {
            st.info[1].task = 0;
        }
        st.words[2] = w;
    }

    /// The fast path's push of an untimed entry that is no graph source (`w` is
    /// [`entry`]`(ids, mode)`, with `word::TASK` flipped in in async code and
    /// [`word::RECORDED`] when recorded); the general push past the inline array.
    #[inline(always)]
    pub(crate) fn push_plain(
        &self,
        w: u64,
        ids: u64,
        site: &'static Location<'static>,
        #[cfg(feature = "tokio")] task: u64,
    ) {
        let st = self.stack_mut();
        // The whole byte: below `INLINE_HELD`, it is the depth and the thread is not busy (a
        // busy thread, which the callers never are, takes the general push).
        let n = self.busy.word();
        if (n as usize) < INLINE_HELD {
            st.words[n as usize + 1] = w;
            let e = &mut st.info[n as usize];
            e.site = site;
            e.ids = ids;
            #[cfg(feature = "tokio")]
            {
                e.task = task;
            }
            self.busy.0.set(n + 1);
            return;
        }
        self.push_deep(
            w,
            ids,
            site,
            #[cfg(feature = "tokio")]
            task,
        );
    }

    /// [`ThreadState::push_plain`] past the inline array, or while busy (out of line: it
    /// allocates).
    #[cold]
    #[inline(never)]
    fn push_deep(
        &self,
        w: u64,
        ids: u64,
        site: &'static Location<'static>,
        #[cfg(feature = "tokio")] task: u64,
    ) {
        let l = logical_of(w, ids);
        self.push(Held {
            inst: l & word::INST,
            class: Ids::from_word(ids).class,
            mode: mode_of(l),
            site,
            since: None,
            source: false,
            // The recorded fast path pushes this way too (`hooks::lock_recorded`).
            recorded: l & word::RECORDED != 0,
            #[cfg(feature = "tokio")]
            task,
        });
    }

    /// Pushes (always tracked: past [`INLINE_HELD`] the stack moves to the heap). The spill area
    /// is allocated while the stack is not borrowed, then installed; if the stack changed in
    /// between (an allocator that took and released a lock), the attempt starts over. An
    /// acquisition calls [`ThreadState::reserve_push`] before taking its lock, so that this
    /// push, right after, does not allocate.
    pub(crate) fn push(&self, h: Held) {
        loop {
            let Err(cap) = self.stack_mut().try_push(&self.busy, &h) else {
                return;
            };
            self.grow_spill(cap);
        }
    }

    /// Makes room for one more entry before a lock is taken (the slow paths, which may nest
    /// deeper than [`INLINE_HELD`]): the push that follows the acquisition then never allocates.
    /// An allocator that takes the lock being acquired would otherwise take it again on this
    /// thread, right after the acquisition (a self-deadlock lockcheck made). One test while
    /// shallow.
    #[inline]
    pub(crate) fn reserve_push(&self) {
        if self.busy.n() >= INLINE_HELD {
            self.reserve_deep();
        }
    }

    #[cold]
    #[inline(never)]
    fn reserve_deep(&self) {
        while let Err(cap) = self.stack().room_for_one(&self.busy) {
            self.grow_spill(cap);
        }
    }

    /// Allocates a spill area of `cap` entries with the stack not borrowed (the allocator may
    /// re-enter lockcheck), then installs it if it is still needed.
    fn grow_spill(&self, cap: usize) {
        // The thread's slow state frees the spill area at thread exit (first, as it may register
        // that thread-local's destructor, which allocates).
        with_slow(|slow| slow.owns_spill = true);
        let fresh: Vec<Held> = Vec::with_capacity(cap);
        let old = self.stack_mut().install_spill(&self.busy, fresh);
        drop(old);
    }

    /// The release fast path: pops the top entry if its stored word is exactly `w`
    /// ([`entry`]`(ids, mode)` with the lock's identity now: any flag, i.e. a graph source, a
    /// timed or a recorded hold, fails the test, and so does an entry pushed before the identity
    /// gained a flag bit). False: nothing changed, take the general path
    /// ([`ThreadState::pop_top_if`], [`ThreadState::remove_last`]).
    #[inline(always)]
    pub(crate) fn pop_plain_top(&self, w: u64) -> bool {
        let st = self.stack();
        // The whole byte: busy inside lockcheck, it indexes `NO_ENTRY` (the general path pops).
        let d = self.busy.word();
        // Which task took it does not matter to a release.
        #[cfg(feature = "tokio")]
        let same = |i: usize| (st.words[i] ^ w) & !word::TASK == 0;
        #[cfg(not(feature = "tokio"))]
        let same = |i: usize| st.words[i] == w;
        // The top's slot, or `NO_ENTRY` when the stack is empty or spilled (see `WORD_SLOTS`).
        if same(d as usize) {
            self.busy.pop();
            return true;
        }
        false
    }

    /// The general release's first test: pops the top entry (inline, this thread not busy) if
    /// its logical word (`inst | mode << 40 | flags`) passes `f` (a bit test), and returns that
    /// word. For the holds [`ThreadState::pop_plain_top`] leaves: recorded, or pushed before
    /// the lock's identity gained a flag bit.
    pub(crate) fn pop_top_if(&self, f: impl Fn(u64) -> bool) -> Option<u64> {
        let st = self.stack();
        let d = self.busy.word();
        if d.wrapping_sub(1) >= INLINE_HELD as u8 {
            return None;
        }
        let l = st.logical(d as usize - 1);
        if !f(l) {
            return None;
        }
        self.busy.0.set(d - 1);
        Some(l)
    }

    /// The nested fast path's look-up with one lock held (the caller saw
    /// [`ThreadState::busy_depth`] 1: not busy, one entry): whether acquiring `req`
    /// ([`entry`]`(ids, mode)`) over it was checked already (the memo, see
    /// [`HeldStack::known_req`]): two comparisons. A hit means the full path would find nothing:
    /// the graph knows the dependency in this epoch and `inst` is not the held lock (no
    /// self-conflict), whatever the order switch is now. An unassigned identity (`req`
    /// [`entry`]`(0, mode)`) never hits: the memo is written with an assigned one, and cleared to
    /// `known_base` 0, which no held word is.
    #[inline(always)]
    pub(crate) fn known_top(&self, req: u64) -> bool {
        let st = self.stack();
        st.known_req == req && st.words[1] == st.known_base
    }

    /// Notes in the memo that acquiring the lock of identity word `ids` in `mode` over the
    /// held set as it is now was checked against the graph in this epoch: the check completed,
    /// its dependency is marked in the cache, and it raised nothing. Only with one lock held
    /// that is not `inst` (a self-conflict must reach the full path each time) and not tagged by
    /// an async task (which task runs decides there).
    pub(crate) fn remember_top(&self, ids: u64, mode: Mode) {
        let req = entry(ids, mode);
        let st = self.stack_mut();
        if self.busy.n() != 1 {
            return;
        }
        let w = st.words[1];
        #[cfg(feature = "tokio")]
        if st.logical(0) & word::TASK != 0 {
            return;
        }
        if !same_instance(w, req) {
            st.known_base = w;
            st.known_req = req;
            st.key_base = w;
            st.key_req = pack(ids & word::INST, mode);
        }
    }

    /// [`ThreadState::remember_top`] after the full check of `key`, if the held set and the
    /// epoch are still the ones it checked; `ids` is the requested lock's identity word now.
    pub(crate) fn remember_checked(&self, key: &CacheKey, ids: u64) {
        let st = self.stack();
        if key.len == 1
            && self.busy.n() == 1
            && st.logical(0) & word::KEY == key.held[0]
            && key.epoch == self.epoch.get()
            && ids & word::INST == key.lock & word::INST
        {
            self.remember_top(ids, mode_of(key.lock));
        }
    }

    /// Removes the newest entry matching `f` (a field comparison: it runs while the stack is
    /// borrowed); a spill area given back is freed after.
    pub(crate) fn remove_last(&self, f: impl Fn(&Held) -> bool) -> Option<Held> {
        self.stack_mut().remove_last(&self.busy, f)
    }

    /// The oldest entry matching `f` (a field comparison), copied out.
    pub(crate) fn find_held(&self, f: impl Fn(&Held) -> bool) -> Option<Held> {
        let (st, d) = (self.stack(), &self.busy);
        (0..st.len(d)).map(|i| st.get(d, i)).find(|h| f(h))
    }

    /// The newest entry matching `f` (a field comparison), copied out.
    pub(crate) fn rfind_held(&self, f: impl Fn(&Held) -> bool) -> Option<Held> {
        let (st, d) = (self.stack(), &self.busy);
        (0..st.len(d)).rev().map(|i| st.get(d, i)).find(|h| f(h))
    }

    /// How many entries match `f` (a field comparison), and the oldest of them.
    pub(crate) fn count_held(&self, f: impl Fn(&Held) -> bool) -> (usize, Option<Held>) {
        let (st, d) = (self.stack(), &self.busy);
        let mut first = None;
        let mut count = 0;
        for h in (0..st.len(d)).map(|i| st.get(d, i)).filter(|h| f(h)) {
            first.get_or_insert(h);
            count += 1;
        }
        (count, first)
    }

    /// Changes the mode of the newest entry of `inst` held in `from` (upgrade, downgrade).
    pub(crate) fn convert(&self, inst: u64, from: Mode, to: Mode) {
        let st = self.stack_mut();
        let n = self.busy.n();
        if n > INLINE_HELD {
            if let Some(h) = st
                .spill
                .iter_mut()
                .rev()
                .find(|h| h.inst == inst && h.mode == from)
            {
                h.mode = to;
            }
        } else if let Some(i) = (0..n)
            .rev()
            .find(|&i| st.logical(i) & word::KEY == pack(inst, from))
        {
            let l = st.logical(i);
            st.set_logical(i, (l & !word::KEY) | pack(inst, to));
        }
    }

    /// Marks every held entry as a graph source (their release must let dropping the lock
    /// remove its node).
    pub(crate) fn mark_sources(&self) {
        let st = self.stack_mut();
        let n = self.busy.n();
        if n > INLINE_HELD {
            st.spill.iter_mut().for_each(|h| h.source = true);
        } else {
            for i in 0..n {
                let l = st.logical(i);
                st.set_logical(i, l | word::SOURCE);
            }
        }
    }

    /// Marks every held entry [`word::SPUN`] (a failed try of this thread); returns whether every
    /// one was marked already, i.e. held without a break since the previous failed try that
    /// marked them (a lock given back and taken again is a new, unmarked entry). Their release
    /// then takes the general path (the stored word differs), a cost paid only by holds under
    /// a failed try. Spilled entries keep no mark: true (the streak goes on, the reporting side).
    pub(crate) fn mark_spun(&self) -> bool {
        let st = self.stack_mut();
        let n = self.busy.n();
        if n > INLINE_HELD {
            return true;
        }
        let mut all = true;
        for i in 0..n {
            let l = st.logical(i);
            if l & word::SPUN == 0 {
                all = false;
                st.set_logical(i, l | word::SPUN);
            }
        }
        all
    }

    /// Marks every held entry as recorded (their release goes to the trace): the recorder shows
    /// them held at the start of the thread's stream (`recorder::show_held`).
    pub(crate) fn mark_recorded(&self) {
        let st = self.stack_mut();
        let n = self.busy.n();
        if n > INLINE_HELD {
            st.spill.iter_mut().for_each(|h| h.recorded = true);
        } else {
            for i in 0..n {
                let l = st.logical(i);
                st.set_logical(i, l | word::RECORDED);
            }
        }
    }

    /// A copy of the held stack, oldest first. The vector is allocated with nothing borrowed,
    /// then filled (again, larger, if the stack grew in between).
    pub(crate) fn held_snapshot(&self) -> Vec<Held> {
        let mut v = Vec::new();
        self.held_snapshot_into(&mut v);
        v
    }

    /// [`ThreadState::held_snapshot`] into `v` (emptied first), within its capacity when it
    /// suffices: a buffer kept by the caller makes the copy no allocation.
    pub(crate) fn held_snapshot_into(&self, v: &mut Vec<Held>) {
        v.clear();
        let mut want = self.held_len();
        loop {
            if want == 0 {
                return;
            }
            // Grown with nothing borrowed.
            v.reserve(want);
            let (st, d) = (self.stack(), &self.busy);
            let len = st.len(d);
            if len <= v.capacity() {
                // Within capacity: no allocation while borrowed.
                v.extend((0..len).map(|i| st.get(d, i)));
                return;
            }
            want = len;
        }
    }

    /// Gives up the spill area (thread exit): the area, to be freed by the caller. A spilled
    /// stack's entries go with it; an inline stack keeps its entries.
    fn take_spill(&self) -> Vec<Held> {
        let st = self.stack_mut();
        if self.busy.n() == SPILLED {
            self.busy.set_n(0);
        }
        std::mem::take(&mut *st.spill)
    }

    /// The cache key of acquiring `inst` in `mode` over the held set, and whether `inst` is
    /// among the held locks (a possible self-conflict). `None` when nothing is held.
    /// (Always inlined: with a second caller, `hooks::upgrade_order`, LLVM made it a call from
    /// `hooks::checks` too, +26 instructions per recorded pair and +126 per new edge.)
    #[inline(always)]
    pub(crate) fn cache_key(&self, inst: u64, mode: Mode) -> Option<(CacheKey, bool)> {
        let (st, d) = (self.stack(), &self.busy);
        let len = st.len(d);
        if len == 0 {
            return None;
        }
        let req = pack(inst, mode);
        let mut set = 0u64;
        let mut held = [0u64; CACHE_HELD];
        let mut again = false;
        for (i, w) in (0..len).map(|i| st.key_word(d, i)).enumerate() {
            again |= w & word::INST == inst;
            if let Some(k) = held.get_mut(i) {
                *k = w;
            }
            set = set.wrapping_add(w);
        }
        let key = CacheKey {
            slot: slot_of(set, req),
            lock: slot_lock(req, len),
            epoch: self.epoch.get(),
            held,
            len,
        };
        Some((key, again))
    }

    /// The nested fast path's look-up: whether acquiring `req` (`pack(inst, mode)`) over the
    /// current held set (1 to [`CACHE_HELD`] entries, none of them `inst`, none tagged by an
    /// async task) is a dependency this thread already checked. Looks without marking: on a
    /// miss the full check runs and marks it. Exact, like [`ThreadState::cache_hit`]. One held
    /// lock (the usual nesting) is a few compares inline; more go out of line.
    #[inline(always)]
    pub(crate) fn known_dependency(&self, req: u64) -> bool {
        if self.busy.n() != 1 {
            return self.known_dependency_deep(req);
        }
        self.known_dependency_one(req)
    }

    /// [`ThreadState::known_dependency`] when one lock is held; false otherwise.
    #[inline(always)]
    pub(crate) fn known_dependency_one(&self, req: u64) -> bool {
        let st = self.stack();
        if self.busy.n() != 1 {
            return false;
        }
        // The memo (see `HeldStack::key_req`): two compares, no decoding, no probe.
        let top = st.words[1];
        if st.key_req == req && top == st.key_base {
            return true;
        }
        let w0 = st.logical(0);
        #[cfg(feature = "tokio")]
        if w0 & word::TASK != 0 {
            return false;
        }
        let k0 = w0 & word::KEY;
        if (k0 ^ req) & word::INST == 0 {
            return false;
        }
        let slot = &self.cache[slot_of(k0, req)];
        let hit = slot.lock.get() == slot_lock(req, 1)
            && slot.held[0].get() == k0
            && slot.epoch.get() == self.epoch.get();
        if hit {
            let st = self.stack_mut();
            st.key_base = top;
            st.key_req = req;
        }
        hit
    }

    /// [`ThreadState::known_dependency`] over 2 to [`CACHE_HELD`] held locks.
    #[inline(never)]
    fn known_dependency_deep(&self, req: u64) -> bool {
        let st = self.stack();
        let n = self.busy.n();
        if n.wrapping_sub(1) >= CACHE_HELD {
            return false;
        }
        let mut keys = [0u64; CACHE_HELD];
        let mut set = 0u64;
        for (w, key) in (0..n).map(|i| st.logical(i)).zip(&mut keys) {
            #[cfg(feature = "tokio")]
            if w & word::TASK != 0 {
                return false;
            }
            let k = w & word::KEY;
            if (k ^ req) & word::INST == 0 {
                return false;
            }
            *key = k;
            set = set.wrapping_add(k);
        }
        let slot = &self.cache[slot_of(set, req)];
        if slot.lock.get() != slot_lock(req, n) || slot.epoch.get() != self.epoch.get() {
            return false;
        }
        keys[..n].iter().zip(&slot.held).all(|(k, c)| *k == c.get())
    }
}

impl ThreadState {
    /// This thread's number (assigned on first use).
    pub(crate) fn id(&self) -> u64 {
        let id = self.id.get();
        if id != 0 {
            return id;
        }
        let id = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
        self.id.set(id);
        with_slow(|slow| {
            if slow.clock.get(id) == 0 {
                slow.clock.set(id, 1);
            }
        });
        id
    }

    /// This thread's vector clock.
    pub(crate) fn clock(&self) -> VectorClock {
        let id = self.id();
        with_slow(|slow| slow.clock.clone()).unwrap_or_else(|| {
            let mut c = VectorClock::new();
            c.set(id, 1);
            c
        })
    }

    /// The clock's epoch: it changes whenever the clock does (see [`ThreadState::bump_epoch`]),
    /// so that a record of the thread may keep the clock it read in this epoch.
    pub(crate) fn clock_epoch(&self) -> u64 {
        self.epoch.get()
    }

    /// Takes the number and starting clock a parent assigned at spawn.
    pub(crate) fn adopt(&self, id: u64, mut clock: VectorClock) {
        self.id.set(id);
        clock.set(id, 1);
        with_slow(|slow| slow.clock = clock);
        self.bump_epoch();
    }

    /// Steps this thread's own entry of its vector clock (it spawned a thread, sent a message
    /// that orders the receiver after it, or its closure returned): what it does next is not
    /// before what took the clock so far.
    pub(crate) fn tick_clock(&self) {
        let id = self.id();
        with_slow(|slow| slow.clock.tick(id));
        self.bump_epoch();
    }

    /// The vector clock changed (spawn, join): every dependency is checked again, with the new
    /// clock (the cache compares the epoch; the held stack's memo is cleared).
    pub(crate) fn bump_epoch(&self) {
        self.epoch.set(self.epoch.get() + 1);
        let st = self.stack_mut();
        st.known_base = 0;
        st.known_req = 0;
        st.key_base = 0;
        st.key_req = 0;
    }

    /// Whether the dependency `key` was checked before; marks it checked. Exact: a hit means
    /// the very same (lock, mode, held set, epoch), never a hash collision.
    #[inline]
    pub(crate) fn cache_hit(&self, key: &CacheKey) -> bool {
        if key.len > CACHE_HELD {
            return self.deep_hit(key);
        }
        let slot = &self.cache[key.slot & (CACHE_SLOTS - 1)];
        let held = &key.held[..key.len];
        // The length is part of `key.lock`: equal words mean equal lengths.
        if slot.lock.get() == key.lock
            && slot.epoch.get() == key.epoch
            && held.iter().zip(&slot.held).all(|(k, c)| *k == c.get())
        {
            return true;
        }
        slot.lock.set(key.lock);
        slot.epoch.set(key.epoch);
        for (k, s) in held.iter().zip(&slot.held) {
            s.set(*k);
        }
        false
    }

    #[cold]
    #[inline(never)]
    fn deep_hit(&self, key: &CacheKey) -> bool {
        let held = self.held_snapshot();
        let entry = (
            key.lock,
            key.epoch,
            held.iter()
                .map(|h| pack(h.inst, h.mode))
                .collect::<Vec<u64>>(),
        );
        with_slow(|slow| {
            if slow.deep_checked.contains(&entry) {
                return true;
            }
            if slow.deep_checked.len() >= DEEP_CACHE_MAX {
                slow.deep_checked.clear();
            }
            slow.deep_checked.insert(entry);
            false
        })
        .unwrap_or(false)
    }

    /// Forgets a cached key (the check it stood for was not completed).
    pub(crate) fn cache_forget(&self, key: &CacheKey) {
        if key.len > CACHE_HELD {
            with_slow(|slow| slow.deep_checked.clear());
            return;
        }
        let slot = &self.cache[key.slot & (CACHE_SLOTS - 1)];
        if slot.lock.get() == key.lock {
            slot.lock.set(0);
        }
    }
}

/// A fresh thread number (for a child about to be spawned).
pub(crate) fn new_thread_id() -> u64 {
    NEXT_THREAD.fetch_add(1, Ordering::Relaxed)
}

/// Runs `f` with this thread marked busy (lockcheck's own work): lock acquisitions inside are
/// plain. Returns `None` if the thread is already busy or its state is gone (thread exit).
pub(crate) fn as_busy<R>(f: impl FnOnce(&ThreadState) -> R) -> Option<R> {
    STATE
        .try_with(|s| {
            if s.busy.replace(true) {
                return None;
            }
            struct Reset<'a>(&'a BusyDepth);
            impl Drop for Reset<'_> {
                fn drop(&mut self) {
                    self.0.set(false);
                }
            }
            let _reset = Reset(&s.busy);
            Some(f(s))
        })
        .ok()
        .flatten()
}

/// A cheap 64-bit mixer (splitmix64's finalizer). Written by hand: a hash crate would add a
/// dependency for four lines, and the std hasher (SipHash) is too slow for the async paths.
#[cfg(feature = "tokio")]
#[inline]
pub(crate) fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The thread's name for dependency records, allocated once per thread.
pub(crate) fn shared_thread_name(id: u64) -> std::sync::Arc<str> {
    with_slow(|slow| match &slow.name {
        Some((i, n)) if *i == id => n.clone(),
        _ => {
            let n: std::sync::Arc<str> = thread_name(id).into();
            slow.name = Some((id, n.clone()));
            n
        }
    })
    .unwrap_or_else(|| thread_name(id).into())
}

/// The calling thread's name for reports (see [`crate::thread::describe_current`]); `id` is
/// lockcheck's number for it, which reports carry separately. An async task (feature `tokio`) is
/// named by its task number instead.
pub(crate) fn thread_name(id: u64) -> String {
    #[cfg(feature = "tokio")]
    if crate::tokio::track::is_task(id) {
        return crate::tokio::track::task_name(id);
    }
    let _ = id;
    crate::thread::describe_current()
}

/// A held guard of one of lockcheck's own mutexes, with the thread marked busy for as long as it
/// is held (see [`internal`]).
pub(crate) struct Internal<'a, T> {
    guard: ManuallyDrop<parking_lot::MutexGuard<'a, T>>,
    /// The busy flag before: only the outermost guard clears it.
    was_busy: bool,
}

/// Takes one of lockcheck's internal mutexes (class table, graph, findings, waiters...), with the
/// thread marked busy until the guard is dropped: an allocation made while it is held may enter a
/// global allocator that takes a checked lock, whose hooks then take their untracked way out
/// (raw lock, no identity, no check, no report) instead of taking this same mutex again, which
/// would deadlock the thread on itself. Every internal mutex of `checked/*` (but the recorder's,
/// which marks itself busy) is taken through this (see docs/reliability.md, "Internal locks").
pub(crate) fn internal<T>(m: &parking_lot::Mutex<T>) -> Internal<'_, T> {
    // Before the lock: nothing between here and the drop may count as this thread's own work.
    let was_busy = STATE.try_with(|s| s.busy.replace(true)).unwrap_or(true);
    Internal {
        guard: ManuallyDrop::new(m.lock()),
        was_busy,
    }
}

/// [`internal`] without waiting: `None` when another thread holds the mutex (the thread's busy
/// flag is as before). For a thread that may hold a lock a global allocator takes, and must not
/// wait for a mutex under which another thread allocates (see `watch::begin_wait`).
pub(crate) fn try_internal<T>(m: &parking_lot::Mutex<T>) -> Option<Internal<'_, T>> {
    let was_busy = STATE.try_with(|s| s.busy.replace(true)).unwrap_or(true);
    match m.try_lock() {
        Some(guard) => Some(Internal {
            guard: ManuallyDrop::new(guard),
            was_busy,
        }),
        None => {
            if !was_busy {
                let _ = STATE.try_with(|s| s.busy.set(false));
            }
            None
        }
    }
}

impl<T> std::ops::Deref for Internal<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> std::ops::DerefMut for Internal<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for Internal<'_, T> {
    fn drop(&mut self) {
        // SAFETY: dropped once, here; the field is not used after.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        if !self.was_busy {
            let _ = STATE.try_with(|s| s.busy.set(false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> &'static Location<'static> {
        Location::caller()
    }

    /// [`ThreadState::push_first`], untagged.
    fn first(s: &ThreadState, w: u64, ids: u64) {
        s.push_first(
            w,
            ids,
            site(),
            #[cfg(feature = "tokio")]
            0,
        );
    }

    /// Identity words near the layout's edges: the largest class, instances with their high
    /// bits set or clear, the identity's own flags (bits 62 and 63) set.
    fn identities() -> [u64; 4] {
        let big = Ids {
            inst: (1 << 40) - 2,
            class: (1 << 21) - 2,
        };
        let small = Ids { inst: 3, class: 0 };
        [
            big.word(),
            small.word(),
            big.word() | 1 << 62 | 1 << 63,
            Ids {
                inst: 0x55_5555_5555,
                class: 0x0a_aaaa,
            }
            .word()
                | 1 << 63,
        ]
    }

    /// The release fast path compares the top's slot before it tests the identity for 0
    /// (`hooks::release_kind`): an unassigned identity's word, in every mode, never pops,
    /// whatever the depth byte indexes: slot 0 (nothing held), an entry (1 to [`INLINE_HELD`]
    /// held), [`SPILLED`]'s slot (deeper), or a busy thread's. Fails with the empty slots 0.
    #[test]
    fn no_slot_the_release_reads_pops_an_unassigned_identity() {
        let modes = [
            Mode::Exclusive,
            Mode::Shared,
            Mode::SharedRecursive,
            Mode::Upgradable,
            Mode::Permit,
        ];
        let none_pops = |s: &ThreadState, n: usize| {
            for mode in modes {
                assert!(!s.pop_plain_top(entry(0, mode)), "{n} held, {mode:?}");
                assert_eq!(s.held_len(), n, "{mode:?}");
            }
        };
        STATE.with(|s| {
            let ids = identities();
            let held = |i: usize| Held {
                inst: (ids[i % 4] & word::INST) ^ (i as u64 + 1) << 8,
                class: Ids::from_word(ids[i % 4]).class,
                mode: modes[i % modes.len()],
                site: site(),
                since: None,
                source: false,
                recorded: false,
                #[cfg(feature = "tokio")]
                task: 0,
            };
            none_pops(s, 0);
            for n in 1..=INLINE_HELD + 3 {
                s.push(held(n));
                none_pops(s, n);
                let was = s.busy.replace(true);
                none_pops(s, n);
                s.busy.set(was);
            }
            for n in (0..INLINE_HELD + 3).rev() {
                let h = held(n + 1);
                assert!(s.remove_last(|x| x.inst == h.inst).is_some());
                none_pops(s, n);
            }
        });
    }

    /// A fast push writes no identity beside an exclusive or shared word; whatever an earlier
    /// entry left in the slot (another lock's identity, or none), the entry reads back as
    /// pushed, and only a shared entry's word has `word::FLIPPED`.
    #[test]
    fn fast_pushed_entries_decode_whatever_the_slot_held_before() {
        STATE.with(|s| {
            for &stale in &identities() {
                for &ids in &identities() {
                    for mode in [Mode::Exclusive, Mode::Shared] {
                        s.stack_mut().info[0].ids = stale;
                        s.stack_mut().info[1].ids = stale;
                        first(s, entry(ids, mode), ids);
                        s.push_second(entry(ids ^ 1, mode), ids ^ 1, site());
                        let held = s.held_snapshot();
                        for (h, ids) in held.iter().zip([ids, ids ^ 1]) {
                            assert_eq!(
                                (h.inst, h.class),
                                (ids & word::INST, Ids::from_word(ids).class)
                            );
                            assert_eq!(h.mode, mode);
                            assert!(!h.source && !h.recorded && h.since.is_none());
                        }
                        let w = s.stack().words[2];
                        assert_eq!(
                            w & word::FLIPPED != 0,
                            mode == Mode::Shared && SHARED_COMPLEMENT,
                            "{w:#x}"
                        );
                        assert!(s.pop_plain_top(entry(ids ^ 1, mode)));
                        assert!(s.pop_plain_top(entry(ids, mode)));
                        assert_eq!(s.held_len(), 0);
                    }
                }
            }
        });
    }

    /// Flags and mode changes on every mode's entries: the stored word follows (a shared entry's
    /// complement included), the identity stays, and the release's exact test fails on a
    /// flagged entry and passes once the flag is gone.
    #[test]
    fn flags_and_mode_changes_keep_the_identity_of_every_mode() {
        STATE.with(|s| {
            let modes = [
                Mode::Exclusive,
                Mode::Shared,
                Mode::SharedRecursive,
                Mode::Upgradable,
                Mode::Permit,
            ];
            for &ids in &identities() {
                for mode in modes {
                    s.stack_mut().info[0].ids = identities()[0] ^ 7;
                    s.push_plain(
                        entry(ids, mode) ^ word::RECORDED,
                        ids,
                        site(),
                        #[cfg(feature = "tokio")]
                        0,
                    );
                    let h = s.held_snapshot()[0];
                    assert_eq!((h.inst, h.mode, h.recorded), (ids & word::INST, mode, true));
                    assert!(!s.pop_plain_top(entry(ids, mode)));
                    s.mark_sources();
                    let h = s.held_snapshot()[0];
                    assert_eq!(
                        (h.class, h.mode, h.source),
                        (Ids::from_word(ids).class, mode, true)
                    );
                    for to in modes {
                        s.convert(ids & word::INST, h.mode, to);
                        let now = s.held_snapshot()[0];
                        assert_eq!(
                            (now.inst, now.mode, now.source),
                            (ids & word::INST, to, true)
                        );
                        let w = s.stack().words[1];
                        assert_eq!(
                            w & word::FLIPPED != 0,
                            to == Mode::Shared && SHARED_COMPLEMENT,
                            "{w:#x}"
                        );
                        s.convert(ids & word::INST, to, mode);
                    }
                    let key = pack(ids & word::INST, mode);
                    let popped = s.pop_top_if(|l| l & word::KEY == key).expect("popped");
                    assert_eq!(popped & !word::KEY, word::SOURCE | word::RECORDED);
                    assert_eq!(s.held_len(), 0);
                }
            }
        });
    }

    /// The memo never remembers a request for the held instance, in any pair of modes (a
    /// shared request's word is complemented: its low bits are not the instance), and does
    /// remember one for another instance.
    #[test]
    fn the_memo_refuses_the_held_instance_in_every_mode() {
        STATE.with(|s| {
            for &ids in &identities() {
                for held in [Mode::Exclusive, Mode::Shared] {
                    for req in [Mode::Exclusive, Mode::Shared, Mode::Upgradable] {
                        first(s, entry(ids, held), ids);
                        s.remember_top(ids, req);
                        assert!(!s.known_top(entry(ids, req)), "{held:?} then {req:?}");
                        let other = ids ^ 0x10;
                        s.remember_top(other, req);
                        assert!(s.known_top(entry(other, req)), "{held:?} then {req:?}");
                        s.bump_epoch();
                        assert!(s.pop_plain_top(entry(ids, held)));
                    }
                }
            }
        });
    }

    /// The cache look-up's memo (written on a hit over one held entry): answers for that entry
    /// and request only, and not past an epoch bump; the held instance is never "known".
    #[test]
    fn the_look_up_memo_holds_for_its_entry_request_and_epoch_only() {
        STATE.with(|s| {
            let [a, b, ..] = identities();
            let (ia, ib) = (a & word::INST, b & word::INST);
            first(s, entry(a, Mode::Shared), a);
            let req = pack(ib, Mode::Exclusive);
            assert!(!s.known_dependency(req));
            let (key, again) = s.cache_key(ib, Mode::Exclusive).expect("one held");
            assert!(!again);
            assert!(!s.cache_hit(&key), "marks it");
            assert!(s.known_dependency(req), "the probe");
            assert!(s.known_dependency(req), "the memo");
            assert!(!s.known_dependency(pack(ib, Mode::Shared)));
            assert!(!s.known_dependency(pack(ia, Mode::Exclusive)));
            // The same lock held in another mode: another entry.
            assert!(s.pop_plain_top(entry(a, Mode::Shared)));
            first(s, entry(a, Mode::Exclusive), a);
            assert!(!s.known_dependency(req));
            assert!(s.pop_plain_top(entry(a, Mode::Exclusive)));
            first(s, entry(a, Mode::Shared), a);
            assert!(s.known_dependency(req));
            s.bump_epoch();
            assert!(!s.known_dependency(req), "a new epoch checks again");
            assert!(s.pop_plain_top(entry(a, Mode::Shared)));
        });
    }
}
