//! The replayed model of one or many traces: threads, locks, classes, sites and the distinct lock
//! dependencies they made.
//!
//! Each trace is one process: its thread, lock, class and site numbers are local to it and are
//! mapped to global ids here. Classes merge across traces by `key`, sites by `loc`, so an order
//! seen in one test binary and its reverse in another meet in one graph.
//!
//! Memory grows with distinct dependencies, not with events: a dependency is identified by
//! (thread, lock, mode, how, held set with modes) and the distinct vector clocks it was made at
//! (see [`MAX_CLOCKS_PER_DEP`]). A [`DepRecord`] is a few machine words: held sets are interned
//! in a prefix tree of (lock, mode) per thread ([`Model::held_sets`]; a thread's held stack is a
//! node of it, so an acquisition is one step down, a dependency stores the node and is found at
//! the node of its held set extended by its request), the sites of the held locks likewise
//! ([`Model::held_sites`]), and vector clocks, which change only at fork and join, in a table by
//! index ([`Model::clocks`]). [`Model::dep`] gives the view of a dependency that the
//! rules of [`lockcheck_core::deps`] check.
//!
//! A `request` (a blocking acquisition about to be checked) is a dependency too: the runtime may
//! stop the thread there with a report, and the trace must then still show what it found. A
//! request of a lock the thread already holds, in a mode that waits for that hold, is a
//! [`SelfDeadlock`].

use crate::clocks::{Clock, Clocks};
use crate::held_stack::{HeldStack, HoldsLock};
use crate::hist::Histogram;
use lockcheck_core::deps::DepView;
use lockcheck_core::trace::{
    is_peek_site, ClassStats, Event, Frame, How, LockKind, Mode, Short, TRY_RETRIES,
};
use std::collections::HashMap;
use std::hash::BuildHasher;

/// Global thread id (index into [`Model::threads`]).
pub type ThreadId = u32;
/// Global lock instance id (index into [`Model::locks`]).
pub type LockId = u32;
/// Global class id (index into [`Model::classes`]).
pub type ClassId = u32;
/// Global site id (index into [`Model::sites`]).
pub type SiteId = u32;
/// An interned held set (a node of [`Model::held_sets`]; [`EMPTY`] is the empty set).
pub type HeldId = u32;
/// An interned list of the sites where held locks were acquired (a node of
/// [`Model::held_sites`], parallel to a [`HeldId`]).
pub type HeldSitesId = u32;
/// An interned vector clock (index into [`Model::clocks`]; [`EMPTY`] is the clock that knows
/// nothing).
pub type ClockId = u32;
/// The root of a [`Trie`] (the empty list) and the empty clock of [`Model::clocks`].
pub const EMPTY: u32 = 0;

/// How many distinct vector clocks a dependency identity keeps exactly.
///
/// A thread's clock changes only at fork and join, so this is almost always 1. The clocks of one
/// identity all belong to one thread and form a chain, and which of them is concurrent with
/// another thread's dependency is an interval of that chain that can lie anywhere in it (a round
/// of spawn and join in the middle of a loop): no subset of the chain is enough for every other
/// dependency, so every distinct clock is kept, up to this bound on memory. Beyond it, the
/// further occurrences are merged into one dependency *without* ordering (an empty clock, which
/// the fork/join filter treats as concurrent with everything): a cycle through it is never
/// removed for fork/join reasons, at worst a false alarm, never a miss, and the analyzer warns
/// (see [`Approximations`]).
pub const MAX_CLOCKS_PER_DEP: usize = 256;
/// How many distinct site combinations a dependency lists for reports and the hierarchy's
/// acquisitions to change. Distinct combinations are code paths, so a program rarely comes near
/// it; those beyond it are counted ([`Model::sites_dropped`]) and warned about.
pub const MAX_SITES_PER_DEP: usize = 64;
/// How many locks held at once are beyond any real program (lockdep allows 48): a trace that
/// comes there has most likely lost its releases. Nothing is forgotten: held sets are interned,
/// so a deeper one costs one node per acquisition, and the model stays exact; acquisitions at
/// this depth or deeper are counted in [`Anomalies::deep_held`] and warned about, because every
/// dependency made there names that many held locks and the lock graph grows with them.
pub const DEEP_HELD: usize = 256;
/// The budget of the model's held sets: at most this many held-lock entries over all distinct
/// dependencies (what the lock graph is built from; the interned held-set nodes have a budget
/// of their own, [`MAX_HELD_NODES`]). A real trace stays far below it (the planted 5M-event
/// trace: 2.3M entries); held sets that grow without bound would make it quadratic in the
/// trace. Beyond it, new
/// dependencies are not recorded, counted in [`Anomalies::over_budget`] (a warning, and an
/// incomplete analysis).
pub const MAX_HELD_ENTRIES: usize = 1 << 23;
/// The base budget of each of the model's two held-set tries ([`Model::held_sets`],
/// [`Model::held_sites`]): at most this many interned nodes (distinct held sets) plus
/// [`HELD_NODES_PER_ACQUISITION`] for every acquisition replayed so far. While the replay runs
/// a node costs 20 bytes in the first and 16 in the second (its parent and item, its first
/// child, the index of its further children), so the base bounds the tables of a short trace
/// at 2 x 2.1M nodes, about 75 MB, and a long one's grow with the trace at most. A real trace
/// makes about one node per acquisition in each trie at most (the acquired lock's, under a held
/// set already interned; a few after a release below the top) and usually far fewer: the
/// planted 5M-event trace of a whole suite's shape (16 threads, 400 locks, nesting 1 to 4) makes
/// 1.3M nodes, its 20M-event form several million (a fixed budget of 2.1M nodes left 3.3M of
/// that one's dependencies or site lists unrecorded). The hostile
/// traces that reach it make tens of nodes per event (held sets that grow without bound,
/// releases below the top of thousands of holds that intern every hold above again): the
/// 200,000-event random traces made 8.4M nodes and 300 MB of tables at the former, fixed
/// budget ([`MAX_HELD_ENTRIES`]). Beyond it, the acquisitions that would make a new node are
/// not recorded as dependencies, counted in [`Anomalies::over_node_budget`] (a warning, and an
/// incomplete analysis).
pub const MAX_HELD_NODES: usize = 1 << 21;
/// The nodes each acquisition adds to the held-set tries' budget ([`MAX_HELD_NODES`]): a new
/// held set costs one node (a few after a release below the top, which interns the holds above
/// it again) and a held set seen before none, so that no real trace comes near the budget
/// however long it is, while a hostile one's tables stay proportional to its length.
pub const HELD_NODES_PER_ACQUISITION: usize = 2;

/// A thread of some trace.
#[derive(Debug, Clone)]
pub struct ThreadInfo {
    /// Its name in the trace (`T<n>` when it has none).
    pub name: String,
    /// The trace it belongs to.
    pub trace: u32,
}

/// A lock instance of some trace.
#[derive(Debug, Clone)]
pub struct LockInfo {
    /// Its class.
    pub class: ClassId,
    /// The trace it belongs to.
    pub trace: u32,
    /// Its number in that trace.
    pub local: u64,
    /// Whether it was ever requested or held in exclusive mode.
    pub ever_written: bool,
    /// Its write locks, for the read-read rule (RwLocks only).
    pub writes: Writes,
    /// Semaphore permits, if known: the most its `lock` events gave, less those a `forget`
    /// event removed since.
    pub permits: Option<u64>,
    /// The most permits it ever had (its `lock` events' most, forgets aside): the gate rule's
    /// count ([`Model::gates`]).
    pub most_permits: Option<u64>,
}

/// Write locks of an instance noted one by one, as the runtime notes them (its
/// `graph::WRITE_NOTES`): past them the instance counts as written concurrently with every read
/// pair ([`Writes::unordered`]). The runtime bounds its cost so; the analyzer applies the same
/// bound to the same writes so that it reports what the runtime does (offline equals runtime),
/// on the conservative side.
pub const WRITE_NOTES: u32 = 8;
/// Distinct write clocks kept per class, as the runtime keeps them; past it the class counts as
/// written concurrently with every read pair.
pub const WRITE_CLASS_CLOCKS: usize = 64;

/// The write locks of an RwLock instance or class, for the read-read rule: a read-read link of a
/// cycle counts only if a write can come between the two reads (see
/// [`lockcheck_core::deps::write_between`]).
#[derive(Debug, Clone, Default)]
pub struct Writes {
    /// The distinct (thread, clock) of the writes noted.
    pub clocks: Vec<(ThreadId, ClockId)>,
    /// Writes noted (an instance's: up to [`WRITE_NOTES`]).
    pub noted: u32,
    /// Some write is not known one by one (past a bound): counted between every two reads.
    pub unordered: bool,
}

impl Writes {
    /// Notes a write of `thread` at clock `clock`, keeping at most `most_clocks` distinct ones.
    fn note(&mut self, thread: ThreadId, clock: ClockId, most_clocks: usize) {
        if self.unordered {
            return;
        }
        self.noted = self.noted.saturating_add(1);
        if self.clocks.contains(&(thread, clock)) {
            return;
        }
        if self.clocks.len() >= most_clocks {
            self.set_unordered();
        } else {
            self.clocks.push((thread, clock));
        }
    }

    fn set_unordered(&mut self) {
        self.unordered = true;
        self.clocks = Vec::new();
    }
}

/// A lock class, merged across traces by key.
#[derive(Debug, Clone)]
pub struct ClassInfo {
    /// Cross-process identity: name or construction site.
    pub key: String,
    /// What kind of lock.
    pub kind: LockKind,
    /// Number of instances seen.
    pub instances: u32,
    /// Whether any instance was ever requested or held in exclusive mode.
    pub ever_written: bool,
    /// The write locks of its instances, for the read-read rule (RwLocks only).
    pub writes: Writes,
    /// Wait times of acquisitions (every acquisition; 0 when uncontended or unmeasured).
    pub wait: Histogram,
    /// Hold times of releases (0 when unmeasured).
    pub hold: Histogram,
    /// Failed `try_*` acquisitions.
    pub try_failures: u64,
    /// Failed timed acquisitions, and the longest time waited by one of them.
    pub timed_failures: u64,
    /// Longest wait of a failed timed acquisition (about the timeout in use), in nanoseconds.
    pub timed_failure_wait_max_ns: u64,
    /// Sum of the `stats` events of this class, if any trace had them.
    pub stats: Option<ClassStats>,
}

/// An acquisition site, merged across traces by location.
#[derive(Debug, Clone)]
pub struct SiteInfo {
    /// `file:line:col` (or whatever location the trace format gives).
    pub loc: String,
    /// Backtrace of the first acquisition there, innermost first (may be empty).
    pub frames: Vec<Frame>,
}

/// The sites of one occurrence of a dependency (a site combination).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DepSites {
    /// Where the lock was requested.
    pub site: Option<SiteId>,
    /// Where each held lock was acquired, in the order of the held set: a node of
    /// [`Model::held_sites`] (see [`Model::held_sites_of`]).
    pub held: HeldSitesId,
}

/// One distinct dependency with what reports need about it, in a few machine words: the held
/// set, clock and further site combinations are indices into the [`Model`]'s tables (see
/// [`Model::dep`] for the view the rules check).
#[derive(Debug, Clone)]
pub struct DepRecord {
    /// The requesting thread.
    pub thread: ThreadId,
    /// The requested lock.
    pub lock: LockId,
    /// The requested mode.
    pub mode: Mode,
    /// Whether the request could block forever.
    pub how: How,
    /// Whether it comes from a request that was never granted (the trace ended while waiting,
    /// or the runtime stopped the thread there with a report).
    pub pending: bool,
    /// The locks held at the request (see [`Model::held`]).
    pub held: HeldId,
    /// The thread's vector clock at the request ([`Model::clocks`]).
    pub clock: ClockId,
    /// How many acquisitions made it.
    pub count: u64,
    /// Made (by at least one of its acquisitions) by a `try_*` failed [`TRY_RETRIES`] times in
    /// a row (a retry loop, checked as the blocking request it amounts to).
    pub retried: bool,
    /// The first site combination seen (see [`Model::sites_of`] for all of them).
    pub first_sites: DepSites,
    /// Index into the further site combinations, `u32::MAX` when there are none.
    more_sites: u32,
    /// The next dependency with the same request node (another clock or `how`), `u32::MAX`
    /// for none.
    next: u32,
}

/// A dependency made by [`ModelBuilder::add_dep`] whose record is not found or made yet
/// ([`ModelBuilder::defer_dep`]): what `add_dep` knew of it.
#[derive(Debug, Clone, Copy)]
struct DepJob {
    /// The held set extended by the request (its mark heads the node's dependencies).
    req: HeldId,
    thread: ThreadId,
    lock: LockId,
    mode: Mode,
    how: How,
    pending: bool,
    /// [`ModelBuilder::retrying`] when it was made.
    retrying: bool,
    held: HeldId,
    clock: ClockId,
    combo: DepSites,
    /// How many locks were held.
    depth: u32,
}

/// The dependencies queued by [`ModelBuilder::defer_dep`], oldest first: a ring of
/// [`DEP_QUEUE`] slots (a `VecDeque` was about 40 instructions a dependency more, its capacity
/// and wrapping tested at each push and pop).
#[derive(Debug)]
struct DepRing {
    jobs: [DepJob; DEP_QUEUE],
    /// The slot of the oldest job.
    head: usize,
    len: usize,
}

impl Default for DepRing {
    fn default() -> Self {
        let none = DepJob {
            req: EMPTY,
            thread: 0,
            lock: 0,
            mode: Mode::Exclusive,
            how: How::Blocking,
            pending: false,
            retrying: false,
            held: EMPTY,
            clock: EMPTY,
            combo: DepSites {
                site: None,
                held: EMPTY,
            },
            depth: 0,
        };
        DepRing {
            jobs: [none; DEP_QUEUE],
            head: 0,
            len: 0,
        }
    }
}

/// How many dependencies [`ModelBuilder::defer_dep`] keeps queued before it counts the oldest:
/// about as many acquisitions as a cache miss lasts, twice (the mark, then the record).
const DEP_QUEUE: usize = 4;
const _: () = assert!(DEP_QUEUE.is_power_of_two() && DEP_QUEUE_PREFETCH < DEP_QUEUE);

/// How many dependencies after its own [`ModelBuilder::defer_dep`] asks for a dependency's
/// record (its mark read then).
const DEP_QUEUE_PREFETCH: usize = 2;

/// What the lock graph reads of a dependency ([`Model::dep_keys`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DepKey {
    /// [`DepRecord::lock`].
    pub(crate) lock: LockId,
    /// [`DepRecord::held`].
    pub(crate) held: HeldId,
    /// The weight of the dependency in the lock graph: 0 for a `try_*` acquisition, else
    /// [`DepRecord::count`] while it is below `u32::MAX`; [`WIDE_WEIGHT`] when the count
    /// must be read from the record.
    pub(crate) weight: u32,
}

/// A [`DepKey::weight`] that does not fit: the record's count is the weight.
pub(crate) const WIDE_WEIGHT: u32 = u32::MAX;

/// The site combinations of a dependency beyond its first.
#[derive(Debug, Clone, Default)]
struct MoreSites {
    /// Up to [`MAX_SITES_PER_DEP`] - 1 further distinct combinations, first seen first.
    list: Vec<DepSites>,
    /// Occurrences whose combination was new but not listed ([`MAX_SITES_PER_DEP`]).
    dropped: u64,
}

/// A table of interned lists, as a prefix tree: a node is a list, its parent the list without
/// its last item. Lists that share a prefix share its nodes, and extending a list by one item is
/// one lookup. Node [`EMPTY`] is the empty list; further empty lists (`Trie::new_root`) start
/// trees of their own.
///
/// The first child of a node is kept beside the node (`first`), and only the further children
/// go into the hash index: extending a list that was never extended (most of them, in a trace
/// of many distinct held sets) or extending it the same way again touches only the entry of
/// the list being extended, which the replay has just used, where a probe of the index would
/// be a cache miss or two into a table as large as the trace's distinct held sets.
#[derive(Debug, Clone)]
pub struct Trie<T, M = ()> {
    /// `(parent, last item)` per node, the item as its [`TrieItem::pack`] (8 bytes a node where
    /// the items themselves made 12); a root's parent is `ROOT` and its item 0.
    nodes: Vec<(u32, u32)>,
    /// Per node: its first child and that child's item (`ROOT` when it has none), and the
    /// node's mark (see [`Trie::mark`]). The mark of a node is read when the list is made (an
    /// acquisition finds its dependency there) and the first child when the list is next
    /// extended (the next nested acquisition): one cache line for both.
    first: Vec<First<M>>,
    /// The children after the first, by `(parent, item)`.
    index: ChildIndex<T>,
    /// A direct-mapped cache of `index`: `(parent, item, child)` by the hash of `(parent,
    /// item)`. The lists extended over and over (a thread's first lock, the common nestings)
    /// are found here, in a table that stays in cache, instead of in an index as large as the
    /// trace's distinct held sets. Items packed, as in `nodes`.
    cache: Vec<(u32, u32, u32)>,
    item: std::marker::PhantomData<T>,
}

/// A [`Trie`] node's first child with its item (packed, [`TrieItem::pack`]), and the node's mark.
#[derive(Debug, Clone, Copy)]
struct First<M> {
    child: u32,
    item: u32,
    mark: M,
}

impl<M: Mark> First<M> {
    const NONE: Self = First {
        child: ROOT,
        item: 0,
        mark: M::NONE,
    };
}

/// What a [`Trie`] keeps per node for its user beside the node's first child: nothing (`()`,
/// no memory), or a `u32` (`Trie::mark`).
pub trait Mark: Copy + std::fmt::Debug {
    /// The mark of a node never marked.
    const NONE: Self;
}

impl Mark for () {
    const NONE: Self = ();
}

impl Mark for u32 {
    const NONE: Self = NO_MARK;
}

/// The mark of a [`Trie`] node that was never marked.
pub const NO_MARK: u32 = u32::MAX;

/// The index of a [`Trie`]'s further children: open addressing with linear probing, key and
/// value in one 16-byte slot, so a probe is one cache line where a `HashMap` reads its control
/// bytes and its entries in two places (the index is as large as the trace's distinct held
/// sets, so both are cache misses). At most three quarters full.
///
/// A slot is `(parent, item bits, child)` with `child == 0` for a free one (node 0, the empty
/// list, is never a child): all zeros, so a new table at each doubling comes zeroed from the
/// allocator (pages the kernel maps zeroed on first touch) instead of being written whole
/// with a free mark before the old entries are moved in.
#[derive(Debug, Clone)]
struct ChildIndex<T> {
    /// `(parent, item.bits(), child)`; `child == FREE_SLOT` marks a free slot.
    slots: Vec<(u32, u64, u32)>,
    len: usize,
    hash: ChildHash,
    item: std::marker::PhantomData<T>,
}

/// The `child` of a free [`ChildIndex`] slot.
const FREE_SLOT: u32 = 0;

/// The hash of a `(parent, item)` key of a [`Trie`]'s index and cache: one 64 x 64 -> 128-bit
/// multiply of the two halves of the key, each mixed with a random seed, folded to 64 bits
/// (the step that foldhash makes per word, without its per-field writes and finish: a
/// generic `hash_one` of the tuple was about 20 instructions of every extension of a list
/// that missed the first child, and the replay makes one or two per acquisition). Randomly
/// seeded per trie, as foldhash's state was, so that a trace cannot choose colliding keys; the
/// hash decides only where a key is stored, never a node's number.
#[derive(Debug, Clone, Copy)]
struct ChildHash {
    seeds: [u64; 2],
}

impl Default for ChildHash {
    fn default() -> Self {
        let state = foldhash::fast::RandomState::default();
        ChildHash {
            seeds: [state.hash_one(1u64), state.hash_one(2u64)],
        }
    }
}

impl ChildHash {
    #[inline]
    fn hash<T: TrieItem>(&self, parent: u32, item: T) -> u64 {
        self.hash_bits(parent, item.bits())
    }

    /// [`ChildHash::hash`] of an item given as its [`TrieItem::bits`].
    #[inline]
    fn hash_bits(&self, parent: u32, bits: u64) -> u64 {
        let a = u64::from(parent) ^ self.seeds[0];
        let b = bits ^ self.seeds[1];
        let m = u128::from(a) * u128::from(b);
        (m as u64) ^ ((m >> 64) as u64)
    }
}

/// An item of a [`Trie`]'s lists, stored packed in 32 bits (distinct items, distinct bits):
/// the tries of a hostile trace hold millions of nodes, 4 bytes of each of their two tables a
/// node apart.
pub trait TrieItem: Copy + Eq {
    /// The item as 32 bits, one to one ([`TrieItem::unpack`] gives it back).
    fn pack(self) -> u32;
    /// The item of [`TrieItem::pack`]'s bits.
    fn unpack(bits: u32) -> Self;
    /// The item as the 64 bits its index hashes.
    #[inline]
    fn bits(self) -> u64 {
        u64::from(self.pack())
    }
}

/// Locks are numbered below this, so that a lock and a mode pack into 32 bits (a lock's tables
/// would take tens of gigabytes before: the reading stops at the event that names one more, with
/// an error that says so, [`ModelBuilder::take_lock_overflow`]).
pub const MAX_LOCKS: usize = 1 << LOCK_BITS;
const LOCK_BITS: u32 = 29;

impl TrieItem for (LockId, Mode) {
    #[inline]
    fn pack(self) -> u32 {
        debug_assert!((self.0 as usize) < MAX_LOCKS);
        self.0 | (self.1 as u32) << LOCK_BITS
    }

    #[inline]
    fn unpack(bits: u32) -> Self {
        let mode = match bits >> LOCK_BITS {
            0 => Mode::Exclusive,
            1 => Mode::Shared,
            2 => Mode::SharedRecursive,
            3 => Mode::Upgradable,
            _ => Mode::Permit,
        };
        (bits & (MAX_LOCKS as u32 - 1), mode)
    }
}

/// The packed `None` of an `Option<SiteId>` (site ids stay below it: there are fewer sites than
/// `u32::MAX`, each a string of the model).
const NO_SITE_BITS: u32 = u32::MAX;

impl TrieItem for Option<SiteId> {
    #[inline]
    fn pack(self) -> u32 {
        match self {
            Some(s) => {
                debug_assert_ne!(s, NO_SITE_BITS);
                s
            }
            None => NO_SITE_BITS,
        }
    }

    #[inline]
    fn unpack(bits: u32) -> Self {
        (bits != NO_SITE_BITS).then_some(bits)
    }
}

impl<T: TrieItem> ChildIndex<T> {
    fn new() -> Self {
        ChildIndex {
            slots: Vec::new(),
            len: 0,
            hash: ChildHash::default(),
            item: std::marker::PhantomData,
        }
    }

    /// The child stored for `(parent, item)` (whose hash is `hash`), or `next` after storing it.
    #[inline]
    fn find_or_insert(&mut self, hash: u64, parent: u32, item: T, next: u32) -> u32 {
        debug_assert_ne!(next, FREE_SLOT);
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let bits = item.bits();
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let (p, it, c) = self.slots[i];
            if c == FREE_SLOT {
                self.slots[i] = (parent, bits, next);
                self.len += 1;
                return next;
            }
            if p == parent && it == bits {
                return c;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(1024);
        // All zeros: `vec!` asks the allocator for zeroed memory, not a fill.
        let old = std::mem::replace(&mut self.slots, vec![(0, 0, FREE_SLOT); size]);
        let mask = size - 1;
        for (p, it, c) in old.into_iter().filter(|s| s.2 != FREE_SLOT) {
            let mut i = self.hash.hash_bits(p, it) as usize & mask;
            while self.slots[i].2 != FREE_SLOT {
                i = (i + 1) & mask;
            }
            self.slots[i] = (p, it, c);
        }
    }
}

/// Entries of a [`Trie`]'s direct-mapped cache (a power of two: 128 KiB of 16-byte entries).
const TRIE_CACHE: usize = 1 << 13;

const ROOT: u32 = u32::MAX;

/// Asks the processor to bring the cache line of `p` into its caches: a hint, with no effect
/// on what the program computes (no fault whatever the address, nothing read). Written by hand:
/// it is one instruction of the standard library's `std::arch`, which no crate makes safer.
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` neither faults nor reads anything the program sees, whatever the
    // address (`wrapping_add` past a table's end included).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl<T: TrieItem, M: Mark> Trie<T, M> {
    fn new() -> Self {
        Trie {
            nodes: vec![(ROOT, 0)],
            first: vec![First::NONE],
            index: ChildIndex::new(),
            cache: vec![(ROOT, 0, ROOT); TRIE_CACHE],
            item: std::marker::PhantomData,
        }
    }

    /// A new empty list, distinct from every other node.
    fn new_root(&mut self) -> u32 {
        self.nodes.push((ROOT, 0));
        self.first.push(First::NONE);
        self.nodes.len() as u32 - 1
    }

    /// The node of list `parent` extended by `item`.
    #[inline(always)]
    fn child(&mut self, parent: u32, item: T) -> u32 {
        let next = self.nodes.len() as u32;
        let packed = item.pack();
        let entry = &mut self.first[parent as usize];
        let (first, first_item) = (entry.child, entry.item);
        if first == ROOT {
            entry.child = next;
            entry.item = packed;
        } else if first_item == packed {
            return first;
        } else {
            let hash = self.index.hash.hash(parent, item);
            let slot = (hash >> 32) as usize & (TRIE_CACHE - 1);
            let (p, i, c) = self.cache[slot];
            if p == parent && i == packed {
                return c;
            }
            let id = self.index.find_or_insert(hash, parent, item, next);
            if id != next {
                // Only a child found again is cached: a new one is most often never looked up
                // again (in the planted trace, 1.27M of the 1.5M nested acquisitions make a
                // new held set), and caching it evicted the hot entries (a thread's first
                // locks, extended at every round), whose lookups then went to the index.
                self.cache[slot] = (parent, packed, id);
                return id;
            }
        }
        self.nodes.push((parent, packed));
        self.first.push(First::NONE);
        next
    }

    /// Asks for the cache lines that [`Trie::child`]`(parent, item)` will read (the parent's
    /// first child, and the slots of the cache and the index where the key would be), so that
    /// their misses overlap each other and the caller's work in between instead of following
    /// one another: a hint that reads nothing the program sees.
    #[inline(always)]
    fn prefetch_child(&self, parent: u32, item: T) {
        prefetch(self.first.as_ptr().wrapping_add(parent as usize));
        let hash = self.index.hash.hash(parent, item);
        let slot = (hash >> 32) as usize & (TRIE_CACHE - 1);
        prefetch(self.cache.as_ptr().wrapping_add(slot));
        let slots = &self.index.slots;
        if !slots.is_empty() {
            prefetch(
                slots
                    .as_ptr()
                    .wrapping_add(hash as usize & (slots.len() - 1)),
            );
        }
    }

    /// Frees what only extending lists needs (the first children, the index and its cache),
    /// once the lists are all made: the model's tries are read-only after the replay, and
    /// these are a third to a half of their memory.
    fn seal(&mut self) {
        self.first = Vec::new();
        self.index.slots = Vec::new();
        self.index.len = 0;
        self.cache = Vec::new();
        self.nodes.shrink_to_fit();
    }

    /// How many distinct lists (nodes, the empty ones included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The list `node` extends and its last item packed ([`TrieItem::pack`]), or `None` for
    /// an empty list.
    pub(crate) fn parent(&self, node: u32) -> Option<(u32, u32)> {
        let &(parent, item) = self.nodes.get(node as usize)?;
        (parent != ROOT).then_some((parent, item))
    }

    /// Whether only the empty list [`EMPTY`] is stored.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    /// The items of list `node`, newest (last) first, without allocating.
    pub fn rev_iter(&self, node: u32) -> impl Iterator<Item = T> + '_ {
        let mut n = node;
        std::iter::from_fn(move || {
            let (parent, item) = *self.nodes.get(n as usize)?;
            if parent == ROOT {
                return None;
            }
            n = parent;
            Some(T::unpack(item))
        })
    }

    /// The items of list `node`, first first (allocates only for lists longer than 8).
    pub fn iter(&self, node: u32) -> Path<T> {
        let mut p = Path {
            inline: [T::unpack(0); PATH_INLINE],
            heap: Vec::new(),
            len: 0,
        };
        for item in self.rev_iter(node) {
            if p.len < PATH_INLINE {
                p.inline[p.len] = item;
            } else {
                if p.heap.is_empty() {
                    p.heap.extend_from_slice(&p.inline);
                }
                p.heap.push(item);
            }
            p.len += 1;
        }
        p
    }

    /// The items of list `node`, first first.
    pub fn to_vec(&self, node: u32) -> Vec<T> {
        self.iter(node).collect()
    }
}

impl<T> Trie<T, u32> {
    /// A number kept with node `node` for its user while lists are made ([`NO_MARK`] until
    /// set): the model keeps there the latest dependency made at a held-set node, beside the
    /// node's first child.
    #[inline]
    fn mark(&self, node: u32) -> u32 {
        self.first.get(node as usize).map_or(NO_MARK, |f| f.mark)
    }

    /// Sets the mark of node `node` (see [`Trie::mark`]).
    #[inline]
    fn set_mark(&mut self, node: u32, mark: u32) {
        self.first[node as usize].mark = mark;
    }
}

const PATH_INLINE: usize = 8;

/// The items of one list of a [`Trie`], first first (see [`Trie::iter`]).
#[derive(Debug, Clone)]
pub struct Path<T> {
    inline: [T; PATH_INLINE],
    heap: Vec<T>,
    /// Items not yet yielded (they are stored newest first).
    len: usize,
}

impl<T: Copy> Iterator for Path<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        Some(if self.heap.is_empty() {
            self.inline[self.len]
        } else {
            self.heap[self.len]
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len, Some(self.len))
    }
}

impl<T: Copy> ExactSizeIterator for Path<T> {}

/// A dependency as the rules see it: its record and the tables it points into.
#[derive(Debug, Clone, Copy)]
pub struct Dep<'a> {
    model: &'a Model,
    rec: &'a DepRecord,
}

impl<'a> Dep<'a> {
    /// The stored record.
    pub fn rec(&self) -> &'a DepRecord {
        self.rec
    }

    /// The held locks with their modes, oldest first.
    pub fn held(&self) -> Path<(LockId, Mode)> {
        self.model.held(self.rec.held)
    }
}

impl DepView for Dep<'_> {
    type Lock = LockId;
    fn thread(&self) -> u64 {
        self.rec.thread as u64
    }
    fn lock(&self) -> LockId {
        self.rec.lock
    }
    fn mode(&self) -> Mode {
        self.rec.mode
    }
    fn how(&self) -> How {
        self.rec.how
    }
    fn epoch(&self, thread: u64) -> u32 {
        self.model.clocks.get(self.rec.clock, thread)
    }
    fn held_iter(&self) -> impl Iterator<Item = (LockId, Mode)> + '_ {
        self.held()
    }
    fn gates(&self, lock: LockId, mode: Mode) -> bool {
        self.model.gates(lock, mode)
    }
    fn held_mode(&self, lock: LockId) -> Option<Mode> {
        // The oldest hold, as `Dependency::held_mode`: walk up without collecting.
        let mut found = None;
        for (l, m) in self.model.held_sets.rev_iter(self.rec.held) {
            if l == lock {
                found = Some(m);
            }
        }
        found
    }
}

/// What kind of self-deadlock a [`SelfDeadlock`] is, named as the runtime names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SelfKind {
    /// The request waits for the thread's own hold: it blocks forever (`self-deadlock`).
    SelfDeadlock,
    /// A read request while the thread read-holds the lock: it deadlocks if a writer queues
    /// between the two reads (`recursive-read`).
    RecursiveRead,
}

impl SelfKind {
    /// The finding's kind: `self-deadlock` or `recursive-read` (as the runtime's report).
    pub fn name(self) -> &'static str {
        match self {
            SelfKind::SelfDeadlock => "self-deadlock",
            SelfKind::RecursiveRead => "recursive-read",
        }
    }

    /// How a blocking request of a lock of `kind` in mode `req` conflicts with the thread's own
    /// hold of it in mode `held`; the same table as the runtime's check. Semaphores are decided
    /// by their permits (holding all of them), condition variables are never held, and locks of
    /// unknown kind (foreign traces, whose Java-style locks are re-entrant) never self-deadlock.
    pub fn of(kind: LockKind, req: Mode, held: Mode) -> Option<SelfKind> {
        use Mode::*;
        match kind {
            LockKind::Semaphore | LockKind::Condvar | LockKind::Unknown => None,
            // A barrier is held only by a participant shown over its request of a waiter's lock
            // (docs/trace-format.md, "Barriers"): as a channel's holder, exclusive.
            LockKind::Mutex
            | LockKind::Once
            | LockKind::End
            | LockKind::Channel
            | LockKind::Barrier => Some(SelfKind::SelfDeadlock),
            LockKind::Rwlock => match (req, held) {
                (Exclusive, _) | (_, Exclusive) | (Upgradable, Upgradable) => {
                    Some(SelfKind::SelfDeadlock)
                }
                (SharedRecursive, _) | (Shared, Upgradable) | (Permit, _) => None,
                (Shared | Upgradable, _) => Some(SelfKind::RecursiveRead),
            },
        }
    }
}

/// A thread requested a lock it already held, in a mode that waits for its own hold.
#[derive(Debug, Clone)]
pub struct SelfDeadlock {
    /// Which kind.
    pub kind: SelfKind,
    /// The thread (first seen).
    pub thread: ThreadId,
    /// The lock.
    pub lock: LockId,
    /// The requested mode.
    pub mode: Mode,
    /// Where it was requested.
    pub site: Option<SiteId>,
    /// The mode of the hold it runs into.
    pub held_mode: Mode,
    /// Where that hold was acquired.
    pub held_site: Option<SiteId>,
    /// How many requests did it (same lock, kind and sites).
    pub count: u64,
    /// Whether no such request was ever granted (the runtime stopped it, or the thread hung).
    pub pending: bool,
    /// Made (by at least one of its requests) by a `try_*` failed [`TRY_RETRIES`] times in a
    /// row (a spin that can never succeed).
    pub retried: bool,
}

/// Threads that each requested a permit of one semaphore while holding some of its permits, and
/// could together hold every permit (spkenv/spk#805), as the runtime's rule finds them
/// (`graph::note_permit_nest`, which argues the rule): at the first request after which the
/// threads seen doing so, not ordered with it by fork/join, held at least as many permits at
/// their requests as the semaphore has. One per semaphore instance, the threads counted then.
#[derive(Debug, Clone)]
pub struct PermitNest {
    /// The semaphore.
    pub lock: LockId,
    /// The requests counted, the one that found it first: (thread, permits held, request site,
    /// site of the oldest permit held).
    pub requests: Vec<(ThreadId, u32, Option<SiteId>, Option<SiteId>)>,
}

/// What [`ModelBuilder`] keeps of one semaphore's nested requests: per thread its request that
/// held the most (thread, held, clock, sites), and whether the semaphore was found (once).
#[derive(Debug, Default)]
struct Nests {
    threads: Vec<NestReq>,
    found: bool,
}

/// One thread's nested permit request: (thread, permits held, clock, request site, site of the
/// oldest permit held).
type NestReq = (ThreadId, u32, ClockId, Option<SiteId>, Option<SiteId>);

/// A wait cycle through a semaphore, found as the runtime's wait-for graph finds it: when a
/// thread requests a permit the semaphore lacks (its holds, counted over every thread, reach the
/// permits its `lock` event gave), the requests still waiting are checked together, and a
/// semaphore request whose every holder waits for something kept by waiters is stuck. The
/// lock-order graph cannot show it: every request of the cycle may be of the same semaphore.
#[derive(Debug, Clone)]
pub struct WaitCycle {
    /// The waits, each kept by the hold of the next (cyclically).
    pub waits: Vec<CycleWait>,
    /// How many times it was seen (same locks and sites).
    pub count: u64,
}

/// One wait of a [`WaitCycle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleWait {
    /// The waiting thread.
    pub thread: ThreadId,
    /// The lock it waits for.
    pub lock: LockId,
    /// The requested mode.
    pub mode: Mode,
    /// Where it was requested.
    pub site: Option<SiteId>,
    /// What it holds that the previous wait of the cycle waits for: the lock,
    pub held: LockId,
    /// the mode of that hold,
    pub held_mode: Mode,
    /// and where it was acquired.
    pub held_site: Option<SiteId>,
}

/// Where the model is not exact, each becomes one warning: what was kept less precisely, and
/// what that can cost (a false alarm, or a shorter list), never a missed finding.
#[derive(Debug, Clone, Default)]
pub struct Approximations {
    /// Dependency identities seen at more than [`MAX_CLOCKS_PER_DEP`] distinct clocks.
    pub unordered_deps: u64,
    /// Occurrences merged into those identities' unordered dependency.
    pub unordered_occurrences: u64,
    /// Dependencies with more than [`MAX_SITES_PER_DEP`] distinct site combinations.
    pub deps_with_dropped_sites: u64,
}

impl Approximations {
    /// One sentence per approximation made.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.unordered_deps > 0 {
            w.push(format!(
                "{} dependenc{} made at more than {MAX_CLOCKS_PER_DEP} distinct fork/join epochs: \
                 {} later occurrence(s) kept without ordering, so the fork-join filter does not \
                 apply to them (a cycle through them may be a false alarm)",
                self.unordered_deps,
                if self.unordered_deps == 1 { "y" } else { "ies" },
                self.unordered_occurrences,
            ));
        }
        if self.deps_with_dropped_sites > 0 {
            w.push(format!(
                "{} dependenc{} made at more than {MAX_SITES_PER_DEP} distinct site combinations: \
                 reports and the hierarchy's acquisitions to change list the first \
                 {MAX_SITES_PER_DEP} of each",
                self.deps_with_dropped_sites,
                if self.deps_with_dropped_sites == 1 {
                    "y"
                } else {
                    "ies"
                },
            ));
        }
        w
    }
}

/// One input trace.
#[derive(Debug, Clone, Default)]
pub struct TraceInfo {
    /// Its name (file path).
    pub name: String,
    /// Events read.
    pub events: u64,
    /// Bytes read, if known.
    pub bytes: u64,
    /// Where it was cut, if it was truncated and that was allowed.
    pub truncated: Option<String>,
}

/// Things in a trace that make no sense but are survivable; each becomes one warning.
#[derive(Debug, Clone, Default)]
pub struct Anomalies {
    /// Releases of a lock the thread (and no other) did not hold.
    pub release_not_held: u64,
    /// Releases of a lock held by another thread only.
    pub release_by_other_thread: u64,
    /// Events naming a lock without a preceding `lock` event.
    pub unknown_lock: u64,
    /// `lock` events naming a class without a preceding `class` event.
    pub unknown_class: u64,
    /// Events naming a site without a preceding `site` event.
    pub unknown_site: u64,
    /// Conversions of a lock the thread did not hold.
    pub convert_not_held: u64,
    /// Events after the first that were a second header, or events before any header.
    pub misplaced_header: u64,
    /// Acquisitions by a thread already holding [`DEEP_HELD`] locks or more (kept exactly).
    pub deep_held: u64,
    /// Dependencies (and site lists of held locks) not recorded because the held sets exceed
    /// [`MAX_HELD_ENTRIES`].
    pub over_budget: u64,
    /// Dependencies (and site lists of held locks) not recorded because the distinct held sets
    /// exceed [`MAX_HELD_NODES`].
    pub over_node_budget: u64,
    /// Requests of an exhausted semaphore whose holders all waited, not checked for a wait
    /// cycle because more than [`MAX_WAIT_CYCLE_WAITERS`] threads were waiting at once.
    pub wait_cycles_unchecked: u64,
    /// `fork` or `join` events whose thread and child are the same thread.
    pub self_fork_join: u64,
    /// `fork` events of a child that an earlier `fork` event already started (each fork still
    /// orders the child after its parent: the conservative reading keeps both).
    pub forked_twice: u64,
    /// `fork` events of a thread never joined by one already ordered after it (its own
    /// descendant, or a thread that joined one of its descendants): a fork cycle, ignored
    /// (applying it would order each thread after the other's later events, which can hide a
    /// finding). A thread joined, then forked again, is a reused number (another tool's
    /// trace): applied, unwarned.
    pub fork_cycles: u64,
    /// Input files given more than once (the same device and inode under two names, or
    /// twice by one name, directly or inside a directory): each read once, the names of the
    /// later mentions with the first's.
    pub duplicate_inputs: Vec<(String, String)>,
}

impl Anomalies {
    /// One human sentence per non-zero counter.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let mut add = |n: u64, what: &str| {
            if n > 0 {
                w.push(format!("{n} {what} (ignored)"));
            }
        };
        add(
            self.release_not_held,
            "release(s) of a lock that was not held",
        );
        add(
            self.release_by_other_thread,
            "release(s) of a lock held by another thread",
        );
        add(
            self.unknown_lock,
            "event(s) naming a lock never declared by a `lock` event",
        );
        add(
            self.unknown_class,
            "`lock` event(s) naming an undeclared class",
        );
        add(self.unknown_site, "event(s) naming an undeclared site");
        add(
            self.convert_not_held,
            "mode conversion(s) of a lock that was not held",
        );
        add(self.misplaced_header, "misplaced header(s)");
        add(
            self.self_fork_join,
            "`fork` or `join` event(s) of a thread with itself",
        );
        if self.forked_twice > 0 {
            w.push(format!(
                "{} `fork` event(s) of a thread already forked before (a thread starts once; both forks order it after its parents)",
                self.forked_twice
            ));
        }
        if self.fork_cycles > 0 {
            w.push(format!(
                "{} `fork` event(s) of a thread by its own descendant or by a thread already ordered after it (a fork cycle; ignored)",
                self.fork_cycles
            ));
        }
        for (again, first) in &self.duplicate_inputs {
            w.push(if again == first {
                format!("trace file `{again}` given more than once: read once")
            } else {
                format!(
                    "trace file `{again}` is `{first}` (the same device and inode), given twice: read once"
                )
            });
        }
        if self.deep_held > 0 {
            w.push(format!(
                "{} acquisition(s) by a thread already holding {DEEP_HELD} or more locks, beyond any real program (releases missing?): kept exactly, but each such dependency names every held lock, which makes the lock graph large",
                self.deep_held
            ));
        }
        if self.wait_cycles_unchecked > 0 {
            w.push(format!(
                "{} request(s) of a semaphore whose permits were all held by waiting threads, made while more than {MAX_WAIT_CYCLE_WAITERS} threads were waiting at once, beyond any real program: not checked for a wait cycle; results may be incomplete",
                self.wait_cycles_unchecked
            ));
        }
        if self.over_budget > 0 {
            w.push(format!(
                "{} dependenc{} or site list(s) not recorded: the held sets of this trace exceed the budget of {MAX_HELD_ENTRIES} held-lock entries (held sets growing without bound: releases missing?); results may be incomplete",
                self.over_budget,
                if self.over_budget == 1 { "y" } else { "ies" },
            ));
        }
        if self.over_node_budget > 0 {
            w.push(format!(
                "{} dependenc{} or site list(s) not recorded: the distinct held sets of this trace exceed the budget of {MAX_HELD_NODES} plus {HELD_NODES_PER_ACQUISITION} per acquisition (held sets growing without bound, or thousands of locks held at once: releases missing?); results may be incomplete",
                self.over_node_budget,
                if self.over_node_budget == 1 { "y" } else { "ies" },
            ));
        }
        w
    }
}

/// The most requests waiting at once that a semaphore request is checked with for a wait cycle
/// ([`WaitCycle`]): the check is quadratic in them, and a real program has far fewer threads
/// waiting together. Beyond, the request is counted in [`Anomalies::wait_cycles_unchecked`].
pub const MAX_WAIT_CYCLE_WAITERS: usize = 4096;

/// Everything the analyses need, built by [`ModelBuilder`].
#[derive(Debug, Clone)]
pub struct Model {
    /// The input traces, in order.
    pub traces: Vec<TraceInfo>,
    /// All threads.
    pub threads: Vec<ThreadInfo>,
    /// All lock instances.
    pub locks: Vec<LockInfo>,
    /// All classes.
    pub classes: Vec<ClassInfo>,
    /// All sites.
    pub sites: Vec<SiteInfo>,
    /// Distinct dependencies.
    pub deps: Vec<DepRecord>,
    /// Per dependency (parallel to [`Model::deps`]): what the lock graph's build and its edge
    /// weights read of every dependency, 12 bytes each, kept by the replay: the graph reads
    /// them in sequential passes, where reading them from the 48-byte records fetched four
    /// times the memory, twice (on the planted 5M-event trace, 61 MB of records: about a
    /// million cache misses per pass).
    pub(crate) dep_keys: Vec<DepKey>,
    /// The distinct held sets of the dependencies, with the mode of each hold: one tree per
    /// thread (a node is a thread's held stack, so a dependency is found at the node of its
    /// held set extended by its request, without a lookup of its own).
    pub held_sets: Trie<(LockId, Mode), u32>,
    /// The distinct lists of sites where the held locks were acquired.
    pub held_sites: Trie<Option<SiteId>>,
    /// The distinct vector clocks of the dependencies; [`EMPTY`] is the empty clock. They share
    /// their nodes with each other (a chain of forks costs linear memory, see [`crate::clocks`]).
    pub clocks: Clocks,
    /// Further site combinations of dependencies (see [`DepRecord::first_sites`]).
    more_sites: Vec<MoreSites>,
    /// Survivable nonsense seen.
    pub anomalies: Anomalies,
    /// Where the model is less than exact.
    pub approximations: Approximations,
    /// Requests of a lock the thread already held, distinct by (kind, lock, sites).
    pub self_deadlocks: Vec<SelfDeadlock>,
    /// Instances per (class, trace) of the classes of two instances or more, to name locks
    /// briefly (a class of one instance is named by its key).
    pub instances_per_trace: HashMap<(ClassId, u32), u32>,
    /// Sync locks seen held across an `.await` (`held_across_await` events), distinct by
    /// (locks, sites).
    pub held_across_await: Vec<HeldAcrossAwait>,
    /// Locks a fork left held, requested by a forked child's only thread (`left_held` events),
    /// distinct by (lock, site).
    pub left_held: Vec<LeftHeld>,
    /// Wait cycles through a semaphore, distinct by (locks, sites).
    pub wait_cycles: Vec<WaitCycle>,
    /// Semaphores whose permits threads requested holding some of them, by enough threads to
    /// hold them all (see [`PermitNest`]), one per semaphore instance.
    pub permit_nests: Vec<PermitNest>,
    /// Possible lost wakeups (only with the rule on: [`ModelBuilder::track_lost_wakeups`]).
    pub lost_wakeups: Vec<crate::lost_wakeup::LostWakeup>,
    /// Condvar waits holding a lock a notifier took (only with the rule on:
    /// [`ModelBuilder::track_lost_wakeups`]; [`crate::condvar_wait`]).
    pub condvar_waits: Vec<crate::condvar_wait::WaitHolding>,
    /// The coarsest resolution of hold times among the traces' headers, in nanoseconds (0: every
    /// trace's hold times are precise). See [`Event::Header`].
    pub hold_resolution_ns: u64,
}

/// A sync lock held by a suspended task (or a runtime's root future) while a holder on the same
/// thread requested a lock: the `held_across_await` event of the lockcheck runtime.
#[derive(Debug, Clone)]
pub struct HeldAcrossAwait {
    /// The requesting thread or task.
    pub thread: ThreadId,
    /// The lock it requested.
    pub lock: LockId,
    /// The requested mode.
    pub mode: Mode,
    /// Where it was requested.
    pub site: Option<SiteId>,
    /// The sync lock held across the `.await`.
    pub held: LockId,
    /// The suspended holder that took it (`None`: a runtime's root future).
    pub holder: Option<ThreadId>,
    /// Where it was taken.
    pub held_site: Option<SiteId>,
    /// How many times it was seen.
    pub count: u64,
}

/// A lock held by a thread of the parent process that a `fork` did not copy, requested by the
/// child's only thread: the `left_held` event of the lockcheck runtime (see
/// [`Event::LeftHeld`]).
#[derive(Debug, Clone)]
pub struct LeftHeld {
    /// The requesting thread.
    pub thread: ThreadId,
    /// The lock left held.
    pub lock: LockId,
    /// The requested mode.
    pub mode: Mode,
    /// Where it was requested.
    pub site: Option<SiteId>,
    /// The other locks the thread held then, as its own events show.
    pub held: Vec<LockId>,
    /// The parent's process id, from the trace's `forked` event (0: none).
    pub parent: u32,
    /// How many times it was seen.
    pub count: u64,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            traces: Vec::new(),
            threads: Vec::new(),
            locks: Vec::new(),
            classes: Vec::new(),
            sites: Vec::new(),
            deps: Vec::new(),
            dep_keys: Vec::new(),
            held_sets: Trie::new(),
            held_sites: Trie::new(),
            clocks: Clocks::default(),
            more_sites: Vec::new(),
            anomalies: Anomalies::default(),
            approximations: Approximations::default(),
            self_deadlocks: Vec::new(),
            instances_per_trace: HashMap::new(),
            held_across_await: Vec::new(),
            left_held: Vec::new(),
            wait_cycles: Vec::new(),
            permit_nests: Vec::new(),
            lost_wakeups: Vec::new(),
            condvar_waits: Vec::new(),
            hold_resolution_ns: 0,
        }
    }
}

impl Model {
    /// The view of dependency `i` (an index into [`Model::deps`]) that the rules check.
    pub fn dep(&self, i: u32) -> Dep<'_> {
        Dep {
            model: self,
            rec: &self.deps[i as usize],
        }
    }

    /// Whether a hold of lock `l` in mode `m` can be a gate (a lock two dependencies hold in
    /// modes that exclude each other, so that they cannot both wait at once): not a permit of a
    /// semaphore known to have several permits (its `lock` events gave more than one), since two
    /// threads can each hold one of its permits at once. Permits not known: a gate, as the
    /// runtime's rule (which learns them where the trace declares them). Several at any time,
    /// even if `forget` events later left one: the dependencies made meanwhile could overlap
    /// (the runtime's `several_permits` is kept as long as the semaphore lives); reporting is
    /// the side to err on.
    pub fn gates(&self, l: LockId, m: Mode) -> bool {
        m != Mode::Permit || self.locks[l as usize].most_permits.is_none_or(|p| p <= 1)
    }

    /// The read-read rule's `ever_written` for the link from `d` (which requests `d.lock()`) to
    /// `next` (which holds it, or at class level an instance of its class): whether a write can
    /// come between the two reads ([`lockcheck_core::deps::write_between`]). Only a plain shared
    /// request asks (for any other mode the answer does not matter: it is the lock's
    /// `ever_written`).
    pub fn write_between<A, B>(&self, class_level: bool, d: &A, next: &B) -> bool
    where
        A: DepView<Lock = LockId> + ?Sized,
        B: DepView<Lock = LockId> + ?Sized,
    {
        let lock = &self.locks[d.lock() as usize];
        let (ever, writes) = if class_level {
            let c = &self.classes[lock.class as usize];
            (c.ever_written, &c.writes)
        } else {
            (lock.ever_written, &lock.writes)
        };
        if !ever || d.mode() != Mode::Shared {
            return ever;
        }
        // A lock written, but not as an RwLock's write (its kind learnt late): every read pair.
        if writes.unordered || (writes.noted == 0 && writes.clocks.is_empty()) {
            return true;
        }
        writes.clocks.iter().any(|&(t, c)| {
            lockcheck_core::deps::write_between(u64::from(t), |x| self.clocks.get(c, x), d, next)
        })
    }

    /// The locks of held set `h` with their modes, oldest first.
    pub fn held(&self, h: HeldId) -> Path<(LockId, Mode)> {
        self.held_sets.iter(h)
    }

    /// Where each lock of a held set was acquired, oldest first (see [`DepSites::held`]).
    pub fn held_sites_of(&self, s: HeldSitesId) -> Vec<Option<SiteId>> {
        self.held_sites.to_vec(s)
    }

    /// The distinct site combinations of a dependency, first seen first (at most
    /// [`MAX_SITES_PER_DEP`]).
    pub fn sites_of<'a>(&'a self, rec: &'a DepRecord) -> impl Iterator<Item = DepSites> + 'a {
        let more = self
            .more_sites
            .get(rec.more_sites as usize)
            .map(|m| m.list.as_slice())
            .unwrap_or(&[]);
        std::iter::once(rec.first_sites).chain(more.iter().copied())
    }

    /// How many distinct site combinations of a dependency are listed by [`Model::sites_of`].
    pub fn site_combinations(&self, rec: &DepRecord) -> usize {
        1 + self
            .more_sites
            .get(rec.more_sites as usize)
            .map_or(0, |m| m.list.len())
    }

    /// Occurrences of a dependency whose site combination was new but not listed
    /// ([`MAX_SITES_PER_DEP`]).
    pub fn sites_dropped(&self, rec: &DepRecord) -> u64 {
        self.more_sites
            .get(rec.more_sites as usize)
            .map_or(0, |m| m.dropped)
    }

    /// Total events over all traces.
    pub fn events(&self) -> u64 {
        self.traces.iter().map(|t| t.events).sum()
    }

    /// A display name for a lock: the class key, qualified by the instance number when the class
    /// has several instances (and by the trace when several traces are merged).
    pub fn lock_name(&self, l: LockId) -> String {
        let Some(lock) = self.locks.get(l as usize) else {
            return format!("?{l}");
        };
        let class = &self.classes[lock.class as usize];
        if class.instances <= 1 {
            // Its one instance, in one trace: the key alone, as below, without the look-up of
            // the count per (class, trace) (a SipHash map: 80M instructions of the hostile
            // random trace's report, which names a lock for each of its held locks listed).
            return class.key.clone();
        }
        let in_trace = self
            .instances_per_trace
            .get(&(lock.class, lock.trace))
            .copied()
            .unwrap_or(1);
        let base = if in_trace <= 1 {
            class.key.clone()
        } else {
            format!("{}#{}", class.key, lock.local)
        };
        if class.instances > in_trace {
            format!("{base} [{}]", self.trace_file(lock.trace))
        } else {
            base
        }
    }

    /// The file name of a trace (without directories).
    pub fn trace_file(&self, trace: u32) -> String {
        let Some(t) = self.traces.get(trace as usize) else {
            return "?".into();
        };
        std::path::Path::new(&t.name)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| t.name.clone())
    }

    /// A display name for a thread (qualified by the trace file when several are merged).
    pub fn thread_name(&self, t: ThreadId) -> String {
        let Some(th) = self.threads.get(t as usize) else {
            return format!("?{t}");
        };
        if self.traces.len() > 1 {
            format!("{} [{}]", th.name, self.trace_file(th.trace))
        } else {
            th.name.clone()
        }
    }

    /// The location of a site.
    pub fn site_loc(&self, s: SiteId) -> &str {
        self.sites
            .get(s as usize)
            .map(|s| s.loc.as_str())
            .unwrap_or("?")
    }
}

#[derive(Debug, Clone, Copy)]
struct Held {
    lock: LockId,
    mode: Mode,
    site: Option<SiteId>,
    /// The held set up to and including this hold.
    node: HeldId,
    /// The sites of the held set up to and including this hold.
    sites: HeldSitesId,
}

/// A request not yet granted: it becomes a dependency when an `acquire` grants it, and a pending
/// one when the thread does anything else first (a panic's unwinding releases, a new request) or
/// the trace ends; a `fail` of it withdraws it.
#[derive(Debug, Clone)]
struct Pending {
    lock: LockId,
    mode: Mode,
    site: Option<SiteId>,
    /// Permits requested at once (a semaphore's `acquire_many(n)`; 1 otherwise).
    n: u32,
    /// The self-deadlock finding it made, if any.
    found: Option<u32>,
}

impl HoldsLock for Held {
    #[inline]
    fn lock(&self) -> u32 {
        self.lock
    }
}

#[derive(Debug)]
struct ThreadState {
    held: HeldStack<Held>,
    /// A clock of the model's [`Clocks`] arena.
    clock: Clock,
    /// `clock` interned, `NO_CLOCK` until a dependency needs it after a change.
    clock_id: ClockId,
    /// The thread's empty held set (the root of its tree in `Model::held_sets`).
    root: HeldId,
    /// How many of the bottom holds have their interned nodes up to date: a release or
    /// conversion below the top invalidates those above it, which are interned again only when
    /// a dependency or a push needs the top (so releases between two acquisitions cost no nodes).
    valid: usize,
    /// Likewise for the sites of the holds, which only a dependency needs (not a push).
    sites_valid: usize,
    pending: Option<Pending>,
    /// The mutex a `cond_wait` just released: the lockcheck runtime also writes the raw unlock
    /// as a `release` right after, which is the same release, not an anomaly.
    cond_released: Option<LockId>,
    /// A `fork` event named this thread as its child (a second one is an anomaly).
    forked: bool,
    /// The last failed try or timed acquisition: (lock, mode, site, held set digest), and how
    /// many times in a row it failed so ([`ModelBuilder::try_retried`]).
    try_retried: Option<(TryKey, u32)>,
    /// How many of the bottom holds were held at the last failed try and not released since
    /// (they form a prefix: a failed try marks every hold, a new one goes on top, a removal
    /// below the mark shifts the marked ones above it down). The runtime's `word::SPUN` marks.
    spun: usize,
    /// A `join` event named this thread as its child (a `fork` of it after that is not taken
    /// for a fork cycle: a reused thread number, in a trace of another tool).
    joined: bool,
    /// The thread's clock at its `returned` event, for a scope's join of it (which waits for
    /// the closure only, not for the thread-local destructors that followed).
    returned: Option<Clock>,
    /// A task (its number in the trace has bit 62 set): its writes are not known by their
    /// clocks ([`ModelBuilder::note_write_slow`]).
    task: bool,
}

/// A failed try as [`ModelBuilder::try_retried`] compares them: lock, mode, site, held set digest.
///
/// The runtime's inline held stack (`state::INLINE_HELD`): holds beyond it keep no mark of a
/// failed try, so a streak over more holds is never broken by a hold given back and taken again.
const RUNTIME_INLINE_HELD: usize = 32;
type TryKey = (LockId, Mode, Option<SiteId>, u64);

/// Looked up once or twice per event: a fast hash, not SipHash (a quarter of the replay's time).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

const NO_CLOCK: ClockId = u32::MAX;
const NO_MORE_SITES: u32 = u32::MAX;
const NO_DEP: u32 = u32::MAX;

#[derive(Debug, Default)]
struct TraceMaps {
    threads: IdMap,
    locks: IdMap,
    classes: IdMap,
    sites: IdMap,
    header_seen: bool,
    /// The parent's pid of a forked child's trace (its `forked` event; 0: none).
    forked_from: u32,
}

/// A trace's numbers below this are mapped to global ids by a table, not a hash map.
const DENSE_IDS: u64 = 1 << 20;
const NO_ID: u32 = u32::MAX;

/// A trace's thread, lock, class or site numbers mapped to global ids: looked up for every
/// event, so the numbers that writers give out densely from 1 (lockcheck's recorder, the
/// research readers) index a table, and only numbers beyond [`DENSE_IDS`] are hashed. The table
/// is at most 4 MiB, whatever the trace says.
#[derive(Debug, Default)]
struct IdMap {
    table: Vec<u32>,
    sparse: FastMap<u64, u32>,
}

impl IdMap {
    #[inline]
    fn get(&self, n: u64) -> Option<u32> {
        // The table first: it never grows beyond `DENSE_IDS`, so its bounds test is the range
        // test too (one test less per number, three numbers per acquisition).
        match usize::try_from(n).ok().and_then(|i| self.table.get(i)) {
            Some(&id) if id != NO_ID => Some(id),
            _ if n < DENSE_IDS => None,
            _ => self.sparse.get(&n).copied(),
        }
    }

    fn insert(&mut self, n: u64, id: u32) {
        if n < DENSE_IDS {
            let i = n as usize;
            if self.table.len() <= i {
                self.table.resize(i + 1, NO_ID);
            }
            self.table[i] = id;
        } else {
            self.sparse.insert(n, id);
        }
    }

    /// Unmaps `n`.
    fn remove(&mut self, n: u64) {
        match usize::try_from(n).ok().and_then(|i| self.table.get_mut(i)) {
            Some(id) => *id = NO_ID,
            None => {
                self.sparse.remove(&n);
            }
        }
    }

    /// Every id mapped to, in no particular order.
    fn values(&self) -> impl Iterator<Item = u32> + '_ {
        self.table
            .iter()
            .copied()
            .filter(|&id| id != NO_ID)
            .chain(self.sparse.values().copied())
    }
}

/// The node budget of a [`ModelBuilder`]'s held-set tries: [`MAX_HELD_NODES`] unless a test
/// sets a smaller one.
#[derive(Debug, Clone, Copy)]
struct NodeBudget(usize);

impl Default for NodeBudget {
    fn default() -> Self {
        NodeBudget(MAX_HELD_NODES)
    }
}

/// Builds a [`Model`] from events, one trace after the other.
///
/// ```
/// use lockcheck_analyze::model::ModelBuilder;
/// use lockcheck_core::trace::{Event, LockKind, Mode, How};
/// let mut b = ModelBuilder::new();
/// b.begin_trace("t.json");
/// b.event(&Event::Class { c: 1, key: "A".into(), kind: LockKind::Mutex });
/// b.event(&Event::Lock { l: 1, c: 1, permits: None });
/// b.event(&Event::Lock { l: 2, c: 1, permits: None });
/// b.event(&Event::Acquire { t: 1, l: 1, m: Mode::Exclusive, how: How::Blocking, s: None, wait_ns: 0 });
/// b.event(&Event::Acquire { t: 1, l: 2, m: Mode::Exclusive, how: How::Blocking, s: None, wait_ns: 0 });
/// let model = b.finish();
/// assert_eq!(model.deps.len(), 1);
/// ```
#[derive(Debug, Default)]
pub struct ModelBuilder {
    model: Model,
    /// Class ids by key, hashed by `class_hasher`; the key compared and rehashed is the class's
    /// own (`model.classes[id].key`), not a copy: a trace of a class per lock (research traces,
    /// STD text) kept each name twice, 70 MB more at the peak for a million locks.
    class_by_key: hashbrown::HashTable<ClassId>,
    class_hasher: foldhash::fast::RandomState,
    /// The trace of each class's first instance, counted in `instances_per_trace` when a
    /// second one comes.
    first_trace: Vec<u32>,
    site_by_loc: HashMap<String, SiteId>,
    /// Held-lock entries over all distinct dependencies (see [`MAX_HELD_ENTRIES`]).
    held_entries: usize,
    /// Lock instances numbered at most ([`MAX_LOCKS`] unless tests set less:
    /// [`ModelBuilder::limit_locks`]).
    lock_limit: Option<usize>,
    /// The lock (as the trace numbers it) past the limit on lock instances: the replay stops
    /// at its event ([`ModelBuilder::take_lock_overflow`]).
    lock_overflow: Option<u64>,
    /// The base of each held-set trie's node budget ([`MAX_HELD_NODES`]; tests set less).
    node_budget: NodeBudget,
    /// What the acquisitions replayed so far add to it ([`HELD_NODES_PER_ACQUISITION`] each).
    node_allowance: usize,
    /// Interned clocks: hash -> first id with that hash; `clock_next` chains the others.
    clock_index: FastMap<u64, ClockId>,
    clock_next: Vec<ClockId>,
    self_index: FastMap<(SelfKind, LockId, Option<SiteId>, Option<SiteId>), u32>,
    /// Nested permit requests per semaphore (see [`ModelBuilder::permit_nest`]).
    nests: FastMap<LockId, Nests>,
    threads: Vec<ThreadState>,
    maps: TraceMaps,
    in_trace: bool,
    /// The first thread id of the current trace: its threads are the ids from here on
    /// ([`ModelBuilder::new_thread`] numbers them in order of first sight), those below belong to
    /// traces that ended and hold nothing ([`ModelBuilder::end_trace`]).
    trace_threads: ThreadId,
    /// Per lock (by [`LockId`]), what its acquisitions and releases read and count.
    hot: Vec<LockHot>,
    /// Set while a retried try is checked as a blocking request ([`ModelBuilder::try_retried`]):
    /// the dependency and the self-deadlock it makes say so.
    retrying: bool,
    /// Dependencies whose records are not found or made yet ([`ModelBuilder::defer_dep`]).
    dep_queue: DepRing,
    /// Tests only: every dependency's held sites interned by [`ModelBuilder::top_sites`], not
    /// by the one step of [`ModelBuilder::add_dep`] (the path to compare it against).
    #[cfg(test)]
    sites_by_top_sites: bool,
    /// The lost-wakeup rule's windows and waits, when it is on
    /// ([`ModelBuilder::track_lost_wakeups`]).
    lost: Option<Box<crate::lost_wakeup::Tracker>>,
    /// The threads whose request is still waiting (`ThreadState::pending`), ascending: the
    /// semaphores' wait cycles read the waiters from here ([`ModelBuilder::wait_cycle`],
    /// [`ModelBuilder::recheck_waits`]), not from a scan of every thread (a pool of 100,000
    /// threads through a semaphore of 4 permits, each request short: 55 s of scans; a ring
    /// of semaphores taken by 100,000 threads, no request waiting: 38 s).
    waiting: std::collections::BTreeSet<ThreadId>,
    /// Counts this builder in [`replaying`] while it lives.
    _replay: ReplayGuard,
    /// [`ModelBuilder::release_elsewhere`]'s summaries of the threads' held locks, made at its
    /// first scan of a thread holding [`HeldMask::MIN_HOLDS`] or more; empty until then.
    masks: Vec<HeldMask>,
    /// Per thread, its entry in `masks` or [`NO_MASK`] (grown by `release_elsewhere` only).
    mask_of: Vec<u32>,
    /// Tests only: the holds a thread needs for a summary (0: [`HeldMask::MIN_HOLDS`]).
    #[cfg(test)]
    mask_min: usize,
    /// Tests only: every dependency recorded when made, not queued (the path
    /// [`ModelBuilder::defer_dep`] is compared against).
    #[cfg(test)]
    deps_unqueued: bool,
}

/// How many [`ModelBuilder`]s are alive (see [`replaying`]).
static REPLAYS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether a [`ModelBuilder`] is replaying a trace (one is alive): a hint for an allocator, which
/// may back the large blocks allocated meanwhile with huge pages (the `lockcheck` CLI's does).
///
/// The replay's tables (the held-set tries, the dependency records, their hash indexes) are tens
/// of megabytes read at random, one dependent cache miss after another: with base pages, each is
/// a TLB miss too, and each first touch of a page a fault. The analyses after it read their
/// tables mostly in order, and some touch few of their pages (a huge page is given whole): huge
/// pages there cost memory and gain little.
pub fn replaying() -> bool {
    REPLAYS.load(std::sync::atomic::Ordering::Relaxed) > 0
}

/// Counts a [`ModelBuilder`] in [`REPLAYS`] from its creation to its drop.
#[derive(Debug)]
struct ReplayGuard;

impl Default for ReplayGuard {
    fn default() -> Self {
        REPLAYS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ReplayGuard
    }
}

impl Drop for ReplayGuard {
    fn drop(&mut self) {
        REPLAYS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Which locks a thread holds, as a 1024-bit filter (lock `l` sets bit `l % 1024`), for the
/// held set interned as `node`: [`ModelBuilder::release_elsewhere`] looks for the lowest thread
/// that holds a lock released by another, and scanned every thread's held stack (0.42G of the
/// hostile random trace's 12.1G instructions: 64 threads holding about 100 locks each). A held
/// set's node names its locks exactly (while the thread's holds are interned up to the top,
/// `ThreadState::valid`), so a summary stays true until the thread's top node changes; a
/// clear bit proves the lock is not held (no scan), a set one is checked by the scan.
#[derive(Debug, Clone)]
struct HeldMask {
    /// The held set the bits describe ([`NO_MASK`] for none yet).
    node: HeldId,
    bits: [u64; HeldMask::WORDS],
}

impl HeldMask {
    const WORDS: usize = 16;
    /// Threads holding fewer locks are scanned: their scan is as short as the summary's test.
    const MIN_HOLDS: usize = 16;

    #[inline]
    fn may_hold(&self, l: LockId) -> bool {
        let bit = l as usize % (64 * Self::WORDS);
        self.bits[bit / 64] >> (bit % 64) & 1 != 0
    }
}

const NO_MASK: u32 = u32::MAX;

/// What every acquisition and release reads and writes of its lock, in one 20-byte entry per
/// lock: the lock's [`LockInfo`] (40 bytes) and its class's [`ClassInfo`] (about 250 bytes,
/// two histograms) were read at every event, and their lines left the first-level cache
/// between two events of a lock.
#[derive(Debug, Clone, Copy)]
struct LockHot {
    /// The lock's class.
    class: ClassId,
    /// How many holds the threads have of it (a semaphore's permits held).
    held: u32,
    /// Acquisitions that waited 0 ns and releases of holds of 0 ns (every event of the
    /// formats without timings) not yet counted in the class's histograms: one add here, the
    /// histograms get them at the end ([`ModelBuilder::finish`]) or when a counter is full.
    wait_zeros: u32,
    hold_zeros: u32,
    /// Whether the lock is marked written already ([`LockInfo::ever_written`]).
    written: bool,
    /// Whether its writes are no longer noted one by one ([`LockInfo::writes`]: unordered, or
    /// not an RwLock).
    writes_done: bool,
    /// Whether its class is a semaphore (updated when a class's kind is learnt late).
    semaphore: bool,
}

impl ModelBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Turns the lost-wakeup rule on (`lockcheck analyze --condvar`): the builder keeps each
    /// thread's window of locks and the condvars' waits and notifies
    /// ([`crate::lost_wakeup`]); [`Model::lost_wakeups`] gets its findings.
    pub fn track_lost_wakeups(&mut self) {
        self.lost.get_or_insert_with(Default::default);
    }

    /// Notes that input `again` names the same file as `first`, read once (a warning).
    pub fn note_duplicate_input(&mut self, again: &str, first: &str) {
        self.model
            .anomalies
            .duplicate_inputs
            .push((again.to_string(), first.to_string()));
    }

    /// Starts a new trace (a new process: fresh thread, lock, class and site numbers).
    pub fn begin_trace(&mut self, name: &str) {
        if self.in_trace {
            self.end_trace();
        }
        self.model.traces.push(TraceInfo {
            name: name.to_string(),
            ..Default::default()
        });
        self.maps = TraceMaps::default();
        self.trace_threads = self.threads.len() as ThreadId;
        self.in_trace = true;
    }

    /// Ends the current trace: requests still waiting become dependencies (a trace cut in a
    /// deadlock ends with the threads waiting), held locks are forgotten.
    pub fn end_trace(&mut self) {
        if !self.in_trace {
            return;
        }
        self.in_trace = false;
        let mut tids: Vec<ThreadId> = self.maps.threads.values().collect();
        // Settling numbers the pending requests' dependencies: in thread order, not the
        // randomly seeded map's.
        tids.sort_unstable();
        for t in tids {
            self.settle(t);
            let state = &mut self.threads[t as usize];
            for h in &state.held {
                self.hot[h.lock as usize].held -= 1;
            }
            state.held.clear();
            state.spun = 0;
            state.valid = 0;
            state.sites_valid = 0;
        }
        self.flush_deps();
        if let Some(lost) = self.lost.as_deref_mut() {
            lost.end_trace();
        }
    }

    /// Sets the most lock instances numbered, below [`MAX_LOCKS`] (at least 1): for tests of
    /// what happens past it, which would otherwise take 2^29 locks.
    #[doc(hidden)]
    pub fn limit_locks(&mut self, n: usize) {
        self.lock_limit = Some(n);
    }

    /// The lock past the most lock instances the analyzer numbers ([`MAX_LOCKS`]), once an
    /// event names one more, with the number of that event in its trace (1-based, the events
    /// of the batch after it not replayed): the reading must fail there, the model is not
    /// whole. `None` while every lock fits.
    pub fn take_lock_overflow(&mut self) -> Option<(u64, u64)> {
        let l = self.lock_overflow.take()?;
        let at = self.model.traces.last().map_or(0, |t| t.events);
        Some((l, at))
    }

    /// The most lock instances numbered: [`MAX_LOCKS`], or less as a test set it.
    pub fn lock_limit(&self) -> usize {
        self.lock_limit.unwrap_or(MAX_LOCKS).clamp(1, MAX_LOCKS)
    }

    /// Records that the current trace was truncated at `pos`.
    pub fn set_truncated(&mut self, pos: String) {
        if let Some(t) = self.model.traces.last_mut() {
            t.truncated = Some(pos);
        }
    }

    /// Adds `bytes` to the current trace's byte count.
    pub fn add_bytes(&mut self, bytes: u64) {
        if let Some(t) = self.model.traces.last_mut() {
            t.bytes += bytes;
        }
    }

    /// Finishes the last trace and returns the model.
    pub fn finish(mut self) -> Model {
        self.end_trace();
        self.flush_deps();
        if let Some(mut lost) = self.lost.take() {
            self.model.condvar_waits = lost.waits_holding();
            self.model.lost_wakeups = lost.finish();
        }
        for l in 0..self.hot.len() {
            self.flush_zeros(l as LockId);
        }
        self.model.held_sets.seal();
        self.model.held_sites.seal();
        self.model
    }

    fn trace_idx(&mut self) -> u32 {
        if !self.in_trace {
            self.begin_trace("<input>");
        }
        (self.model.traces.len() - 1) as u32
    }

    #[inline]
    fn thread(&mut self, t: u64) -> ThreadId {
        match self.maps.threads.get(t) {
            Some(id) => id,
            None => self.new_thread(t),
        }
    }

    /// [`ModelBuilder::thread`] on first sight of `t`: apart and cold, so that the lookup of
    /// every event inlines without this path's stack frame.
    #[cold]
    #[inline(never)]
    fn new_thread(&mut self, t: u64) -> ThreadId {
        let trace = self.trace_idx();
        let id = self.model.threads.len() as ThreadId;
        // A task's number has bit 62 set (docs/trace-format.md); one never declared (a task
        // named only as the holder of a `held_across_await`) is named as the runtime names it.
        const TASK_BIT: u64 = 1 << 62;
        let name = if t & TASK_BIT != 0 {
            format!("task #{}", t & !TASK_BIT)
        } else {
            format!("T{t}")
        };
        self.model.threads.push(ThreadInfo { name, trace });
        let clock = Clock::new_thread(id);
        let root = self.model.held_sets.new_root();
        self.threads.push(ThreadState {
            held: Default::default(),
            clock,
            clock_id: NO_CLOCK,
            root,
            valid: 0,
            sites_valid: 0,
            pending: None,
            cond_released: None,
            forked: false,
            try_retried: None,
            spun: 0,
            joined: false,
            returned: None,
            task: t & TASK_BIT != 0,
        });
        self.maps.threads.insert(t, id);
        id
    }

    fn class_for_key(&mut self, key: &str, kind: LockKind) -> ClassId {
        use std::hash::BuildHasher;
        let hash = self.class_hasher.hash_one(key);
        let classes = &self.model.classes;
        if let Some(&c) = self
            .class_by_key
            .find(hash, |&c| classes[c as usize].key == key)
        {
            let info = &mut self.model.classes[c as usize];
            if info.kind == LockKind::Unknown {
                info.kind = kind;
                if kind == LockKind::Semaphore {
                    for h in self.hot.iter_mut().filter(|h| h.class == c) {
                        h.semaphore = true;
                    }
                }
            }
            return c;
        }
        let c = self.model.classes.len() as ClassId;
        self.model.classes.push(ClassInfo {
            key: key.to_string(),
            kind,
            instances: 0,
            ever_written: false,
            writes: Writes::default(),
            wait: Histogram::new(),
            hold: Histogram::new(),
            try_failures: 0,
            timed_failures: 0,
            timed_failure_wait_max_ns: 0,
            stats: None,
        });
        let (classes, hasher) = (&self.model.classes, &self.class_hasher);
        self.class_by_key.insert_unique(hash, c, |&c| {
            hasher.hash_one(classes[c as usize].key.as_str())
        });
        c
    }

    fn new_lock(&mut self, l: u64, class: ClassId, permits: Option<u64>) -> LockId {
        let trace = self.trace_idx();
        if self.model.locks.len() >= self.lock_limit.unwrap_or(MAX_LOCKS).clamp(1, MAX_LOCKS) {
            // Past what a lock id packs into: the replay of the batch stops at this event and
            // the reading fails there. Until then, lock 0 stands in (not kept).
            self.lock_overflow.get_or_insert(l);
            return 0;
        }
        let id = self.model.locks.len() as LockId;
        self.model.locks.push(LockInfo {
            class,
            trace,
            local: l,
            ever_written: false,
            writes: Writes::default(),
            permits,
            most_permits: permits,
        });
        let instances = {
            let info = &mut self.model.classes[class as usize];
            info.instances += 1;
            info.instances
        };
        // Counted per trace only for a class of two instances or more: a lock alone in its
        // class is named by the key ([`Model::lock_name`]), and a trace of a class per lock
        // (research traces, STD text) made a map entry per lock.
        if instances == 1 {
            let c = class as usize;
            if self.first_trace.len() <= c {
                self.first_trace.resize(c + 1, 0);
            }
            self.first_trace[c] = trace;
        } else {
            let per = &mut self.model.instances_per_trace;
            if instances == 2 {
                *per.entry((class, self.first_trace[class as usize]))
                    .or_default() += 1;
            }
            *per.entry((class, trace)).or_default() += 1;
        }
        self.hot.push(LockHot {
            class,
            held: 0,
            wait_zeros: 0,
            hold_zeros: 0,
            written: false,
            writes_done: false,
            semaphore: self.model.classes[class as usize].kind == LockKind::Semaphore,
        });
        self.maps.locks.insert(l, id);
        id
    }

    #[inline]
    fn lock(&mut self, l: u64) -> LockId {
        match self.maps.locks.get(l) {
            Some(id) => id,
            None => self.undeclared_lock(l),
        }
    }

    /// [`ModelBuilder::lock`] of a lock never declared (see [`ModelBuilder::new_thread`]).
    #[cold]
    #[inline(never)]
    fn undeclared_lock(&mut self, l: u64) -> LockId {
        // Undeclared lock: give it a class of its own, unique to this trace so it merges with
        // nothing across processes.
        self.model.anomalies.unknown_lock += 1;
        let trace = self.trace_idx();
        let key = format!("<undeclared lock {l} of trace {}>", trace + 1);
        let c = self.class_for_key(&key, LockKind::Unknown);
        self.new_lock(l, c, None)
    }

    fn site(&mut self, s: Option<u32>) -> Option<SiteId> {
        let s = s?;
        match self.maps.sites.get(u64::from(s)) {
            Some(id) => Some(id),
            None => {
                self.model.anomalies.unknown_site += 1;
                None
            }
        }
    }

    /// At `t`'s `returned` event: the ends it holds (its own, a lock of kind `end`) are held in
    /// `read` mode from here on. A scope's implicit join requests the end in `read_recursive`
    /// mode (it waits for the closure only, not for the thread-local destructors that follow
    /// `returned`), which does not wait for a `read` hold; an explicit join's `write` request
    /// waits for both (`docs/trace-format.md`, "Thread ends and joins"). Traces written before
    /// the runtime told the two joins apart request `write` either way and read as before.
    fn end_read_after_return(&mut self, t: ThreadId) {
        let state = &mut self.threads[t as usize];
        for i in 0..state.held.len() {
            let h = &mut state.held[i];
            let class = self.model.locks[h.lock as usize].class;
            if h.mode == Mode::Exclusive && self.model.classes[class as usize].kind == LockKind::End
            {
                h.mode = Mode::Shared;
                state.valid = state.valid.min(i);
            }
        }
    }

    #[inline]
    fn mark_written(&mut self, l: LockId, m: Mode) {
        // Read before writing: the lock is almost always marked already, and a write would
        // dirty its line (and its class's) at every acquisition.
        if m == Mode::Exclusive && !self.hot[l as usize].written {
            self.mark_written_now(l);
        }
    }

    /// Marks lock `l` written (see [`ModelBuilder::mark_written`]).
    #[cold]
    #[inline(never)]
    fn mark_written_now(&mut self, l: LockId) {
        self.hot[l as usize].written = true;
        let lock = &mut self.model.locks[l as usize];
        lock.ever_written = true;
        let c = lock.class;
        self.model.classes[c as usize].ever_written = true;
    }

    /// A write lock of `l` by thread `t` (an exclusive request, or an acquisition, upgrade
    /// or conversion that no request announced): noted with `t`'s clock for the read-read rule
    /// while the lock's writes are noted one by one, as the runtime notes them (at its request,
    /// or at a `try_*` write's success).
    #[inline]
    fn note_write(&mut self, t: ThreadId, l: LockId, m: Mode) {
        if m == Mode::Exclusive && !self.hot[l as usize].writes_done {
            self.note_write_slow(t, l);
        }
    }

    #[cold]
    #[inline(never)]
    fn note_write_slow(&mut self, t: ThreadId, l: LockId) {
        let c = self.model.locks[l as usize].class;
        if self.model.classes[c as usize].kind != LockKind::Rwlock {
            // Not an RwLock: no read holds, nothing to note (its `ever_written` stands).
            self.hot[l as usize].writes_done = true;
            return;
        }
        if self.threads[t as usize].task {
            // A task's write, as the runtime notes it (`graph::note_written` with no writer: a
            // task's clock is not known there): counted between every two reads, of the
            // instance and of its class. Noted with the task's clock, which knows only the task,
            // it would count between every two reads but those of the task itself
            // (`write_between` leaves out a write by either reader's thread), which the
            // runtime counts.
            self.hot[l as usize].writes_done = true;
            self.model.locks[l as usize].writes.set_unordered();
            self.model.classes[c as usize].writes.set_unordered();
            return;
        }
        let clock = self.clock_id(t);
        let w = &mut self.model.locks[l as usize].writes;
        w.note(t, clock, usize::MAX);
        if w.noted >= WRITE_NOTES && !w.unordered {
            w.set_unordered();
        }
        let done = w.unordered;
        self.hot[l as usize].writes_done = done;
        let cw = &mut self.model.classes[c as usize].writes;
        cw.note(t, clock, WRITE_CLASS_CLOCKS);
        if done && !cw.unordered {
            cw.set_unordered();
        }
    }

    /// The id of thread `t`'s current clock, interned on first use after a change.
    #[inline]
    fn clock_id(&mut self, t: ThreadId) -> ClockId {
        // Interned already but after a fork or join: the test inline, the interning apart
        // (a call made for the test was about 25 instructions of every dependency).
        match self.threads[t as usize].clock_id {
            NO_CLOCK => self.intern_clock(t),
            id => id,
        }
    }

    /// [`ModelBuilder::clock_id`] when thread `t`'s clock changed since it was last interned.
    #[inline(never)]
    fn intern_clock(&mut self, t: ThreadId) -> ClockId {
        let state = &mut self.threads[t as usize];
        let clocks = &mut self.model.clocks;
        let hash = clocks.arena().hash(&state.clock);
        let mut id = self.clock_index.get(&hash).copied().unwrap_or(NO_CLOCK);
        while id != NO_CLOCK && !clocks.is(id, &state.clock) {
            id = self.clock_next[id as usize];
        }
        if id == NO_CLOCK {
            id = clocks.push(&state.clock);
            // Chain behind the first one with this hash (the empty clock, id 0, is never
            // looked up: a thread's clock always knows the thread itself).
            self.clock_next.resize(clocks.len(), NO_CLOCK);
            let first = *self.clock_index.entry(hash).or_insert(id);
            if first != id {
                self.clock_next[id as usize] = self.clock_next[first as usize];
                self.clock_next[first as usize] = id;
            }
        }
        state.clock_id = id;
        id
    }

    /// Records that thread `t` requests `lock` in `mode` (`how`, at `site`) while holding what it
    /// holds; returns the node of its held set extended by the request (what an acquisition
    /// pushes), or `None` when it holds nothing (no dependency).
    #[inline]
    fn add_dep(
        &mut self,
        t: ThreadId,
        lock: LockId,
        mode: Mode,
        how: How,
        site: Option<SiteId>,
        pending: bool,
    ) -> Option<HeldId> {
        let depth = self.threads[t as usize].held.len();
        if depth == 0 {
            return None;
        }
        // Every hold interned already (the usual case: holds are interned as they are pushed,
        // and only a release or conversion below the top leaves some to do): the top's nodes,
        // without the calls that would find them.
        let state = &self.threads[t as usize];
        let top = &state.held[depth - 1];
        // The two lookups below (the held set's sites, then the held set extended by the
        // request) each miss the cache two or three times in a row on a trace of many distinct
        // held sets (the parent's first child, then the index): their lines asked for at once
        // here, so that the misses overlap.
        if state.valid == depth {
            self.model.held_sets.prefetch_child(top.node, (lock, mode));
        }
        if state.sites_valid + 1 == depth {
            let parent = match depth.checked_sub(2) {
                Some(i) => state.held[i].sites,
                None => EMPTY,
            };
            self.model.held_sites.prefetch_child(parent, top.site);
        }
        let budget = self.node_limit();
        let in_budget = |len: usize| len <= budget;
        let held = if state.valid == depth && in_budget(self.model.held_sets.len()) {
            top.node
        } else {
            let Some(held) = self.top(t) else {
                self.model.anomalies.over_node_budget += 1;
                return None;
            };
            held
        };
        let by_top_sites = self.sites_by_top_sites();
        let state = &mut self.threads[t as usize];
        let held_sites = if state.sites_valid == depth && in_budget(self.model.held_sites.len()) {
            state.held[depth - 1].sites
        } else if state.sites_valid + 1 == depth
            && in_budget(self.model.held_sites.len() + 1)
            && !by_top_sites
        {
            // Only the top hold's site to intern (the usual nested acquisition: the hold
            // below got its sites node at the previous one): `top_sites`' one step, without
            // its call (its prologue and loop were about 30 of its 148 instructions a call on
            // the planted trace, 1.5M calls on the 5M-event one).
            let parent = match depth.checked_sub(2) {
                Some(i) => state.held[i].sites,
                None => EMPTY,
            };
            let sites = self
                .model
                .held_sites
                .child(parent, state.held[depth - 1].site);
            state.held[depth - 1].sites = sites;
            state.sites_valid = depth;
            sites
        } else {
            self.top_sites(t)
        };
        let req = self.model.held_sets.child(held, (lock, mode));
        let clock = self.clock_id(t);
        let job = DepJob {
            req,
            thread: t,
            lock,
            mode,
            how,
            pending,
            retrying: self.retrying,
            held,
            clock,
            combo: DepSites {
                site,
                held: held_sites,
            },
            depth: depth as u32,
        };
        self.defer_dep(job);
        Some(req)
    }

    /// Queues the count of a dependency made by [`ModelBuilder::add_dep`] (its record found
    /// or made by [`ModelBuilder::record_dep`] a few dependencies later, in the same order).
    ///
    /// On a trace of many distinct held sets, finding a dependency again is two cache misses
    /// in a row (its request node's mark, then its record), and nothing the replay does next
    /// waits for them: `add_dep` returns the request node, which the trie gave already. So the
    /// node's mark is asked for now, the record when the mark has come
    /// ([`DEP_QUEUE_PREFETCH`] dependencies later) and the count made when the record has
    /// come ([`DEP_QUEUE`] later), their misses overlapping the replay of the events in
    /// between. Nothing reads the records before the queue is emptied
    /// ([`ModelBuilder::flush_deps`]: after each [`ModelBuilder::event`], before any event
    /// other than an acquisition or release and at the end of each
    /// [`ModelBuilder::event_batch`]).
    #[inline]
    fn defer_dep(&mut self, job: DepJob) {
        #[cfg(test)]
        if self.deps_unqueued {
            self.flush_deps();
            return self.record_dep(job);
        }
        let first = &self.model.held_sets.first;
        prefetch(first.as_ptr().wrapping_add(job.req as usize));
        let q = &mut self.dep_queue;
        let mask = DEP_QUEUE - 1;
        if q.len == DEP_QUEUE {
            // Full: the oldest job's slot takes the new one.
            let oldest = std::mem::replace(&mut q.jobs[q.head], job);
            q.head = (q.head + 1) & mask;
            self.record_dep(oldest);
        } else {
            q.jobs[(q.head + q.len) & mask] = job;
            q.len += 1;
        }
        let q = &self.dep_queue;
        if q.len > DEP_QUEUE_PREFETCH {
            // A hint only: the mark read here may be made stale by a dependency queued before
            // (the record reads it again).
            let j = (q.head + q.len - 1 - DEP_QUEUE_PREFETCH) & mask;
            let head = self.model.held_sets.mark(q.jobs[j].req) as usize;
            if head != NO_DEP as usize {
                let rec = self.model.deps.as_ptr().wrapping_add(head);
                prefetch(rec);
                prefetch(rec.wrapping_add(1).cast::<u8>().wrapping_sub(1));
                prefetch(self.model.dep_keys.as_ptr().wrapping_add(head));
            }
        }
    }

    /// Counts every queued dependency ([`ModelBuilder::defer_dep`]).
    #[inline]
    fn flush_deps(&mut self) {
        while self.dep_queue.len > 0 {
            let q = &mut self.dep_queue;
            let job = q.jobs[q.head];
            q.head = (q.head + 1) & (DEP_QUEUE - 1);
            q.len -= 1;
            self.record_dep(job);
        }
    }

    /// Finds or makes the record of the dependency `job` and counts the occurrence (the second
    /// half of [`ModelBuilder::add_dep`], see [`ModelBuilder::defer_dep`]).
    #[inline(always)]
    fn record_dep(&mut self, job: DepJob) {
        let DepJob {
            req,
            thread: t,
            lock,
            mode,
            how,
            pending,
            retrying,
            held,
            clock,
            combo,
            depth,
        } = job;
        let depth = depth as usize;
        // The node is the thread's held set and request: what tells its dependencies apart is
        // the clock and `how`. The latest is first, and a thread's clock changes only at fork
        // and join, so this is almost always one step.
        let head = self.model.held_sets.mark(req);
        let mut found = NO_DEP;
        let mut unordered = NO_DEP;
        let mut kept = 0usize;
        let mut j = head;
        while j != NO_DEP {
            let d = &self.model.deps[j as usize];
            if d.how == how {
                if d.clock == clock {
                    found = j;
                    break;
                }
                if d.clock == EMPTY {
                    unordered = j;
                }
                kept += 1;
            }
            j = d.next;
        }
        let i = if found != NO_DEP {
            found
        } else {
            let mut clock = clock;
            if kept >= MAX_CLOCKS_PER_DEP {
                // Not exact any more: merge into the one occurrence without ordering, which no
                // fork/join argument can remove from a cycle.
                self.model.approximations.unordered_occurrences += 1;
                clock = EMPTY;
            }
            if clock == EMPTY && unordered != NO_DEP {
                unordered
            } else if self.held_entries + depth > MAX_HELD_ENTRIES {
                self.model.anomalies.over_budget += 1;
                return;
            } else {
                self.held_entries += depth;
                if clock == EMPTY {
                    self.model.approximations.unordered_deps += 1;
                }
                let i = self.model.deps.len() as u32;
                self.model.held_sets.set_mark(req, i);
                self.model.dep_keys.push(DepKey {
                    lock,
                    held,
                    weight: u32::from(how != How::Try),
                });
                self.model.deps.push(DepRecord {
                    thread: t,
                    lock,
                    mode,
                    how,
                    pending,
                    held,
                    clock,
                    count: 1,
                    retried: retrying,
                    first_sites: combo,
                    more_sites: NO_MORE_SITES,
                    next: head,
                });
                return;
            }
        };
        let rec = &mut self.model.deps[i as usize];
        rec.count += 1;
        rec.pending &= pending;
        rec.retried |= retrying;
        if how != How::Try {
            let key = &mut self.model.dep_keys[i as usize];
            key.weight = key.weight.saturating_add(1);
        }
        if rec.first_sites != combo {
            if rec.more_sites == NO_MORE_SITES {
                if MAX_SITES_PER_DEP > 1 {
                    rec.more_sites = self.model.more_sites.len() as u32;
                    self.model.more_sites.push(MoreSites {
                        list: vec![combo],
                        dropped: 0,
                    });
                }
            } else {
                let more = &mut self.model.more_sites[rec.more_sites as usize];
                if !more.list.contains(&combo) {
                    if more.list.len() + 1 < MAX_SITES_PER_DEP {
                        more.list.push(combo);
                    } else {
                        if more.dropped == 0 {
                            self.model.approximations.deps_with_dropped_sites += 1;
                        }
                        more.dropped += 1;
                    }
                }
            }
        }
    }

    /// Whether the tests asked for [`ModelBuilder::top_sites`] only (always `false` outside them).
    #[inline(always)]
    fn sites_by_top_sites(&self) -> bool {
        #[cfg(test)]
        return self.sites_by_top_sites;
        #[cfg(not(test))]
        false
    }

    /// Pushes a hold on thread `t`'s held stack; `node` is its held set extended by it, if known.
    fn push_held(
        &mut self,
        t: ThreadId,
        lock: LockId,
        mode: Mode,
        site: Option<SiteId>,
        node: Option<HeldId>,
    ) {
        let node = match node {
            Some(n) => Some(n),
            None => self
                .top(t)
                .map(|parent| self.model.held_sets.child(parent, (lock, mode))),
        };
        let state = &mut self.threads[t as usize];
        if state.held.len() >= DEEP_HELD {
            self.model.anomalies.deep_held += 1;
        }
        self.hot[lock as usize].held += 1;
        state.held.push(Held {
            lock,
            mode,
            site,
            node: node.unwrap_or(EMPTY),
            sites: EMPTY,
        });
        if node.is_some() {
            state.valid = state.held.len();
        }
    }

    /// The most nodes each held-set trie may have now: the base budget ([`MAX_HELD_NODES`])
    /// and what the acquisitions replayed so far add to it.
    #[inline]
    fn node_limit(&self) -> usize {
        self.node_budget.0 + self.node_allowance
    }

    /// The interned held set of thread `t`, interning again the holds above a release or
    /// conversion below the top; `None` when that would exceed the node budget
    /// ([`ModelBuilder::node_limit`]).
    fn top(&mut self, t: ThreadId) -> Option<HeldId> {
        let limit = self.node_limit();
        let state = &mut self.threads[t as usize];
        let from = state.valid;
        // The stack as a slice, taken once.
        let held: &mut [Held] = &mut state.held;
        if self.model.held_sets.len() + (held.len() - from) > limit {
            return None;
        }
        let mut node = match from.checked_sub(1) {
            Some(i) => held[i].node,
            None => state.root,
        };
        for h in held.iter_mut().skip(from) {
            node = self.model.held_sets.child(node, (h.lock, h.mode));
            h.node = node;
        }
        state.valid = held.len();
        Some(node)
    }

    /// The interned sites of thread `t`'s holds (as [`ModelBuilder::top`]).
    fn top_sites(&mut self, t: ThreadId) -> HeldSitesId {
        let limit = self.node_limit();
        let state = &mut self.threads[t as usize];
        let from = state.sites_valid;
        if self.model.held_sites.len() + (state.held.len() - from) > limit {
            self.model.anomalies.over_node_budget += 1;
            return EMPTY;
        }
        let held = &mut state.held;
        let mut sites = match from.checked_sub(1) {
            Some(i) => held[i].sites,
            None => EMPTY,
        };
        for h in held.iter_mut().skip(from) {
            sites = self.model.held_sites.child(sites, h.site);
            h.sites = sites;
        }
        state.sites_valid = held.len();
        sites
    }

    /// Removes hold `i` of thread `t`.
    #[inline]
    fn remove_held(&mut self, t: ThreadId, i: usize) {
        let state = &mut self.threads[t as usize];
        // Almost always the top (locks are released in reverse order): a pop, not the call
        // to `memmove` that `Vec::remove` makes even for the last item.
        let h = if i + 1 == state.held.len() {
            state.held.pop().expect("hold i exists")
        } else {
            state.held.remove(i)
        };
        self.hot[h.lock as usize].held -= 1;
        if i < state.spun {
            state.spun -= 1;
        }
        state.valid = state.valid.min(i);
        state.sites_valid = state.sites_valid.min(i);
    }

    /// Turns thread `t`'s request that is still waiting into a dependency that was never granted.
    fn settle(&mut self, t: ThreadId) {
        if let Some(p) = self.take_pending(t) {
            self.add_dep(t, p.lock, p.mode, How::Blocking, p.site, true);
        }
    }

    /// Thread `t`'s waiting request, now not waiting: `pending` and the set of waiting threads
    /// change together here and in [`ModelBuilder::set_pending`] only.
    fn take_pending(&mut self, t: ThreadId) -> Option<Pending> {
        let p = self.threads[t as usize].pending.take();
        if p.is_some() {
            self.waiting.remove(&t);
        }
        p
    }

    /// Thread `t`'s request `p`, waiting (see [`ModelBuilder::take_pending`]).
    fn set_pending(&mut self, t: ThreadId, p: Pending) {
        self.threads[t as usize].pending = Some(p);
        self.waiting.insert(t);
    }

    /// Whether thread `t` holds `lock`.
    #[inline]
    fn holds(&self, t: ThreadId, lock: LockId) -> bool {
        self.threads[t as usize].held.holds(lock)
    }

    /// A failed try (or timed acquisition) of `l` in `m` by `t` at `site`, as the runtime counts
    /// it (`hooks::failed_try_retried`): the failures in a row of one try (same lock, mode and
    /// site, same held set, every hold held without a break since the previous failure: a
    /// back-off that gives its locks back between tries is no retry loop; a successful try or
    /// timed acquisition ends the streak, see [`ModelBuilder::acquire`]). The [`TRY_RETRIES`]th is a retry loop, which waits as a
    /// blocking request does: checked as one (a lock the thread holds itself: a self-deadlock;
    /// otherwise a dependency of the held locks on it). Tries inside a lock's `Debug` impl do
    /// not count ([`is_peek_site`]). `n`: the failures in a row one event stands for (a streak
    /// the runtime wrote as one `fail`, the first of them counted as above, the others in the
    /// same streak): the rule fires where the streak reaches [`TRY_RETRIES`], once.
    fn try_retried(&mut self, t: ThreadId, l: LockId, m: Mode, site: Option<SiteId>, n: u32) {
        if site.is_some_and(|s| is_peek_site(&self.model.sites[s as usize].loc)) {
            return;
        }
        let held = &self.threads[t as usize].held;
        let digest = held.iter().fold(0xcbf2_9ce4_8422_2325_u64, |x, h| {
            let site = h.site.map_or(u64::MAX, u64::from);
            [u64::from(h.lock), h.mode as u64, site]
                .into_iter()
                .fold(x, |x, part| (x ^ part).wrapping_mul(0x0100_0000_01b3))
        });
        let key = (l, m, site, digest);
        let state = &mut self.threads[t as usize];
        // The runtime's marks (`ThreadState::mark_spun`): every hold marked already, or more
        // holds than its inline stack keeps marks for (32: the streak goes on).
        let kept = state.spun == state.held.len() || state.held.len() > RUNTIME_INLINE_HELD;
        state.spun = state.held.len();
        let (before, streak) = match &mut state.try_retried {
            Some((k, count)) if *k == key && kept => {
                let before = *count;
                *count = count.saturating_add(n);
                (before, *count)
            }
            memo => {
                *memo = Some((key, n));
                (0, n)
            }
        };
        if before < TRY_RETRIES && TRY_RETRIES <= streak && !state.held.is_empty() {
            self.retrying = true;
            self.self_check(t, l, m, site, true, 1, false);
            self.add_dep(t, l, m, How::Blocking, site, false);
            self.retrying = false;
        }
    }

    /// Whether thread `t`'s request of `lock` in `mode` (of `n` permits, for a semaphore) waits
    /// for its own hold of it; records the finding and returns its index. `alone`: the request
    /// says the runtime saw the semaphore short of permits with no other holder holding any
    /// (`Short::Alone`): the runtime's rule (`semaphore_self_deadlock` of the tokio tracking)
    /// makes it a self-deadlock when the thread holds some of its permits itself, whatever
    /// their count (the permits lacking are its own, or set aside for requests queued before
    /// it, which wait for its own on a first-come-first-served semaphore).
    #[allow(clippy::too_many_arguments)]
    fn self_check(
        &mut self,
        t: ThreadId,
        lock: LockId,
        mode: Mode,
        site: Option<SiteId>,
        pending: bool,
        n: u32,
        alone: bool,
    ) -> Option<u32> {
        // Almost every request is of a lock the thread does not hold: decided on its held
        // stack alone, without reading the lock's class (two loads per acquisition).
        if !self.holds(t, lock) {
            return None;
        }
        let held = &self.threads[t as usize].held;
        let info = &self.model.locks[lock as usize];
        let kind = self.model.classes[info.class as usize].kind;
        let mut own = held.iter().filter(|h| h.lock == lock);
        let (k, h) = if kind == LockKind::Semaphore {
            // Waits for ever when what the thread holds leaves fewer than `n` for it, whatever
            // the others give back.
            let first = own.next()?;
            let count = 1 + own.count() as u64;
            let starved = alone || info.permits.is_some_and(|p| count + u64::from(n) > p);
            if mode != Mode::Permit || !starved {
                return None;
            }
            (SelfKind::SelfDeadlock, first)
        } else {
            own.find_map(|h| SelfKind::of(kind, mode, h.mode).map(|k| (k, h)))?
        };
        let (held_mode, held_site) = (h.mode, h.site);
        let key = (k, lock, site, held_site);
        if let Some(&i) = self.self_index.get(&key) {
            let f = &mut self.model.self_deadlocks[i as usize];
            f.count += 1;
            f.pending &= pending;
            f.retried |= self.retrying;
            return Some(i);
        }
        let i = self.model.self_deadlocks.len() as u32;
        self.model.self_deadlocks.push(SelfDeadlock {
            kind: k,
            thread: t,
            lock,
            mode,
            site,
            held_mode,
            held_site,
            count: 1,
            pending,
            retried: self.retrying,
        });
        self.self_index.insert(key, i);
        Some(i)
    }

    /// A request of `n` permits of semaphore `l` by thread `t` at `site`: if `t` holds some of
    /// its permits, but not so many that the request waits for itself (a self-deadlock), noted
    /// as the runtime notes it (`graph::note_permit_nest`), and a [`PermitNest`] found the first
    /// time the threads seen doing so, not ordered with this request, held every permit at
    /// their requests together.
    fn permit_nest(&mut self, t: ThreadId, l: LockId, site: Option<SiteId>, n: u32) {
        let Some(permits) = self.model.locks[l as usize].permits else {
            return;
        };
        // Threads and tasks alike, as the runtime (a task's clock knows only itself: ordered
        // with nothing, as the runtime's unknown task clock). `permits`: as the semaphore counts
        // them at this request (its `lock` and `forget` events so far), the count the runtime
        // judged it against.
        let held = &self.threads[t as usize].held;
        let mut own = held.iter().filter(|h| h.lock == l);
        let Some(first) = own.next() else {
            return;
        };
        let held_site = first.site;
        let count = 1 + own.count() as u32;
        if u64::from(count) + u64::from(n) > permits {
            return;
        }
        let known = self
            .nests
            .get(&l)
            .is_some_and(|x| x.found || x.threads.iter().any(|e| e.0 == t && e.1 >= count));
        if known {
            return;
        }
        let clock = self.clock_id(t);
        let nests = self.nests.entry(l).or_default();
        let me = match nests.threads.iter().position(|e| e.0 == t) {
            Some(i) => {
                nests.threads[i] = (t, count, clock, site, held_site);
                i
            }
            None => {
                nests.threads.push((t, count, clock, site, held_site));
                nests.threads.len() - 1
            }
        };
        let clocks = &self.model.clocks;
        let hb = |a: (ThreadId, ClockId), b: (ThreadId, ClockId)| {
            let own = clocks.get(a.1, u64::from(a.0));
            own != 0 && own <= clocks.get(b.1, u64::from(a.0))
        };
        let new = (nests.threads[me].0, nests.threads[me].2);
        let counted: Vec<usize> = (0..nests.threads.len())
            .filter(|&i| {
                let e = (nests.threads[i].0, nests.threads[i].2);
                i == me || !(hb(e, new) || hb(new, e))
            })
            .collect();
        let total: u64 = counted.iter().map(|&i| u64::from(nests.threads[i].1)).sum();
        if counted.len() < 2 || total < permits {
            return;
        }
        nests.found = true;
        let request = |i: usize| {
            let e = nests.threads[i];
            (e.0, e.1, e.3, e.4)
        };
        let mut requests = vec![request(me)];
        requests.extend(counted.iter().filter(|&&i| i != me).map(|&i| request(i)));
        self.model
            .permit_nests
            .push(PermitNest { lock: l, requests });
    }

    /// Whether `l` is a semaphore that lacks `n` free permits: those held, plus `n`, exceed its
    /// permits (as its `lock` and `forget` events gave them).
    fn exhausted(&self, l: LockId, n: u32) -> bool {
        let hot = &self.hot[l as usize];
        hot.semaphore
            && self.model.locks[l as usize].permits.is_some_and(|p| {
                let held = u64::from(hot.held);
                held + u64::from(n) > p
            })
    }

    /// A permit of semaphore `l` was given back: a request of it still waiting and still short of
    /// permits is checked again, as if made now. Its check found a holder free to give a permit
    /// back, but the runtime writes the threads' streams one after another, so a release made
    /// before the request may reach the file after it; once it is read, the request may have
    /// only waiting holders left (what the runtime saw). Lowest thread first, as the map's order
    /// is random.
    fn recheck_waits(&mut self, l: LockId) {
        // Only the waiting threads, ascending: the first is the lowest (a release with none
        // waiting looks at nothing).
        let waiter = self.waiting.iter().copied().find(|&o| {
            self.threads[o as usize]
                .pending
                .as_ref()
                .is_some_and(|p| p.lock == l && self.exhausted(l, p.n))
        });
        if let Some(w) = waiter {
            self.wait_cycle(w);
        }
    }

    /// Thread `t` has just requested a permit of a semaphore that lacks one: the wait-for graph
    /// of the requests still waiting, as the runtime's (`deadlock_cycle` of the tokio tracking):
    /// the greatest set of waiters none of which can go on, where a semaphore request stays in
    /// it while the semaphore lacks a permit and every holder of its permits is in it, and
    /// another request while some other holder in a mode that excludes it is. When `t` is in
    /// it, the cycle reached from `t`'s wait (following the first such holder) is recorded if it
    /// goes through a semaphore (a cycle of other locks alone is the lock-order graph's).
    fn wait_cycle(&mut self, t: ThreadId) {
        // The request is stuck only if every holder of the semaphore waits too (what most
        // requests of a busy pool fail at once).
        let l = self.threads[t as usize]
            .pending
            .as_ref()
            .expect("requested")
            .lock;
        // Some thread that does not wait holds `l`: the holds of `l` (each counted in the lock's
        // `held`) outnumber those of the waiting threads.
        let holds_of = |o: ThreadId| {
            self.threads[o as usize]
                .held
                .iter()
                .filter(|h| h.lock == l)
                .count()
        };
        let by_waiters: usize = self.waiting.iter().map(|&o| holds_of(o)).sum();
        let free_holder = self.hot[l as usize].held as usize > by_waiters;
        debug_assert_eq!(
            free_holder,
            self.maps.threads.values().any(|o| {
                let s = &self.threads[o as usize];
                s.pending.is_none() && s.held.iter().any(|h| h.lock == l)
            }),
            "the holds counted by lock and the threads' holds agree"
        );
        if free_holder {
            return;
        }
        let waiters: Vec<ThreadId> = self.waiting.iter().copied().collect();
        debug_assert_eq!(
            waiters,
            {
                let mut all: Vec<ThreadId> = self
                    .maps
                    .threads
                    .values()
                    .filter(|&o| self.threads[o as usize].pending.is_some())
                    .collect();
                all.sort_unstable();
                all
            },
            "the waiting threads are those with a request pending"
        );
        if waiters.len() > MAX_WAIT_CYCLE_WAITERS {
            self.model.anomalies.wait_cycles_unchecked += 1;
            return;
        }
        let pend = |o: ThreadId| self.threads[o as usize].pending.as_ref().expect("a waiter");
        // Holders of each waiter's lock: (thread, mode, site), in thread order.
        let mut all: Vec<ThreadId> = self.maps.threads.values().collect();
        all.sort_unstable();
        let holders: Vec<Vec<(ThreadId, Mode, Option<SiteId>)>> = waiters
            .iter()
            .map(|&w| {
                let l = pend(w).lock;
                all.iter()
                    .flat_map(|&o| {
                        self.threads[o as usize]
                            .held
                            .iter()
                            .filter(move |h| h.lock == l)
                            .map(move |h| (o, h.mode, h.site))
                    })
                    .collect()
            })
            .collect();
        let index = |o: ThreadId| waiters.binary_search(&o).ok();
        let semaphore = |l: LockId| {
            let c = self.model.locks[l as usize].class;
            self.model.classes[c as usize].kind == LockKind::Semaphore
        };
        // Who keeps waiter `i` from its lock, among the stuck.
        let blockers = |stuck: &[bool], i: usize| -> Vec<(ThreadId, Mode, Option<SiteId>)> {
            let w = waiters[i];
            let p = pend(w);
            let stuck_holder = |o: ThreadId| index(o).is_some_and(|j| stuck[j]);
            if semaphore(p.lock) {
                if !self.exhausted(p.lock, p.n)
                    || holders[i].is_empty()
                    || holders[i].iter().any(|&(o, _, _)| !stuck_holder(o))
                {
                    return Vec::new();
                }
                return holders[i].clone();
            }
            holders[i]
                .iter()
                .filter(|&&(o, m, _)| {
                    o != w && (p.mode.excludes(m) || m.excludes(p.mode)) && stuck_holder(o)
                })
                .copied()
                .collect()
        };
        let n = waiters.len();
        let mut stuck = vec![true; n];
        loop {
            let mut changed = false;
            for i in 0..n {
                if stuck[i] && blockers(&stuck, i).is_empty() {
                    stuck[i] = false;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let Some(new) = index(t).filter(|&i| stuck[i]) else {
            return;
        };
        // Follow "waits for what is held by" from the new wait until a holder repeats.
        // (waiter, the mode and site of its hold that the previous one waits for)
        type Step = (usize, Option<(Mode, Option<SiteId>)>);
        let mut path: Vec<Step> = vec![(new, None)];
        let cycle = loop {
            let (i, _) = *path.last().expect("non-empty");
            let Some((h, m, s)) = blockers(&stuck, i)
                .into_iter()
                .find(|&(h, _, _)| h != waiters[i])
            else {
                return;
            };
            let Some(j) = index(h).filter(|&j| stuck[j]) else {
                return;
            };
            if let Some(pos) = path.iter().position(|&(p, _)| waiters[p] == h) {
                let mut cycle = path[pos..].to_vec();
                cycle[0].1 = Some((m, s));
                break cycle;
            }
            path.push((j, Some((m, s))));
        };
        let k = cycle.len();
        let waits: Vec<CycleWait> = (0..k)
            .map(|x| {
                let (i, held) = cycle[x];
                let prev = pend(waiters[cycle[(x + k - 1) % k].0]).lock;
                let (held_mode, held_site) = held.expect("every element of a cycle holds");
                let p = pend(waiters[i]);
                CycleWait {
                    thread: waiters[i],
                    lock: p.lock,
                    mode: p.mode,
                    site: p.site,
                    held: prev,
                    held_mode,
                    held_site,
                }
            })
            .collect();
        if !waits.iter().any(|w| semaphore(w.lock)) {
            return;
        }
        let key = |ws: &[CycleWait]| {
            let mut v: Vec<_> = ws.iter().map(|w| (w.lock, w.site, w.held_site)).collect();
            v.sort_unstable();
            v
        };
        let mine = key(&waits);
        match self
            .model
            .wait_cycles
            .iter_mut()
            .find(|c| key(&c.waits) == mine)
        {
            Some(c) => c.count += 1,
            None => self.model.wait_cycles.push(WaitCycle { waits, count: 1 }),
        }
    }

    /// A `held_across_await` event: one finding per distinct (locks, sites). It changes no held
    /// set: the guard's own `acquire` and `release` are in its thread's stream.
    #[allow(clippy::too_many_arguments)]
    fn held_across_await(
        &mut self,
        t: u64,
        l: u64,
        m: Mode,
        s: Option<u32>,
        h: u64,
        ht: u64,
        hs: Option<u32>,
    ) {
        let thread = self.thread(t);
        let lock = self.lock(l);
        let site = self.site(s);
        let held = self.lock(h);
        let held_site = self.site(hs);
        let holder = (ht != 0).then(|| self.thread(ht));
        let found = self
            .model
            .held_across_await
            .iter_mut()
            .find(|f| (f.lock, f.held, f.site, f.held_site) == (lock, held, site, held_site));
        match found {
            Some(f) => f.count += 1,
            None => self.model.held_across_await.push(HeldAcrossAwait {
                thread,
                lock,
                mode: m,
                site,
                held,
                holder,
                held_site,
                count: 1,
            }),
        }
    }

    /// Feeds the events of `events`, in order, to the current trace, and leaves `events` empty
    /// (its allocation kept): the same as [`ModelBuilder::event`] of each, with the trace's
    /// count of events added once for the batch (the dispatch per event 30 -> 24 instructions
    /// on the planted trace). Each event is taken out of the batch as it is replayed, while it
    /// is in cache: replayed by reference and the batch cleared after, the clear read the
    /// whole batch again (more instructions and first-level misses, measured twice).
    ///
    /// An acquisition or release is read in place, field by field: taken out by value (a
    /// `drain`), each event was copied whole twice on the stack before its fields were read
    /// (16 instructions of the 280 per event on the planted trace). Only the other events,
    /// which own strings, are moved out of the batch. With `record_dep`
    /// always inlined as well: 690.4M -> 681.4M instructions for the whole analysis of a
    /// 500,000-event planted trace (callgrind), 18 per event.
    #[inline]
    pub fn event_batch(&mut self, events: &mut Vec<Event>) {
        let n = events.len();
        if n == 0 {
            return;
        }
        match self.model.traces.last_mut() {
            Some(t) => t.events += n as u64,
            None => {
                self.first_event();
                self.model.traces[0].events = n as u64;
            }
        }
        if self.model.locks.len() + events.len() >= self.lock_limit() {
            // Each event names at most one new lock: only a batch that may reach the limit
            // takes the path that stops at it (the loop below stays as it was).
            return self.event_batch_near_lock_limit(events);
        }
        let base = events.as_ptr();
        // SAFETY: the batch's `n` events stay where they are (nothing else holds `events`
        // while this runs, so its buffer is neither moved nor freed), and with its length 0 the
        // vector owns none of them: each is read once below, acquisitions and releases by
        // reference (their fields are plain numbers, with nothing to drop), every other event
        // moved out by `ptr::read` and dropped here. A panic part way leaks the events not yet
        // read, which is safe.
        unsafe { events.set_len(0) };
        for i in 0..n {
            // SAFETY: `i < n`: an event of the batch, initialized and not yet moved out.
            let e = unsafe { &*base.add(i) };
            match *e {
                Event::Acquire {
                    t,
                    l,
                    m,
                    how,
                    s,
                    wait_ns,
                } => self.acquire(t, l, m, how, s, wait_ns),
                Event::Release { t, l, hold_ns } => self.release(t, l, hold_ns),
                _ => {
                    // SAFETY: read once (see above): the batch no longer owns it.
                    let e = unsafe { std::ptr::read(e) };
                    self.other_event(&e);
                }
            }
        }
        self.flush_deps();
    }

    /// [`ModelBuilder::event_batch`] of a batch that may name the lock past the limit: stops
    /// at its event (the events after it not replayed, nor counted).
    #[cold]
    #[inline(never)]
    fn event_batch_near_lock_limit(&mut self, events: &mut Vec<Event>) {
        let mut drain = events.drain(..);
        for e in drain.by_ref() {
            self.replay(&e);
            if self.lock_overflow.is_some() {
                let left = drain.len() as u64;
                if let Some(t) = self.model.traces.last_mut() {
                    t.events -= left;
                }
                break;
            }
        }
        drop(drain);
        self.flush_deps();
    }

    /// Feeds one event of the current trace.
    ///
    /// Acquisitions and releases (all but a few events of a trace) go to functions of their
    /// own, inlined into the caller's loop: the match over every kind of event made one large
    /// function whose entry and exit (saving and restoring its registers, a large stack frame)
    /// cost about 17 instructions per event.
    #[inline]
    pub fn event(&mut self, e: &Event) {
        match self.model.traces.last_mut() {
            Some(t) => t.events += 1,
            None => self.first_event(),
        }
        self.replay(e);
        self.flush_deps();
    }

    /// Replays one event, without counting it or flushing the deferred dependencies (the
    /// callers' part): the dispatch of [`ModelBuilder::event`] and of a batch near the lock
    /// limit. (The usual batch loop has its own, which moves the events that own strings out
    /// of the batch instead of reading them by reference.)
    #[inline(always)]
    fn replay(&mut self, e: &Event) {
        match *e {
            Event::Acquire {
                t,
                l,
                m,
                how,
                s,
                wait_ns,
            } => self.acquire(t, l, m, how, s, wait_ns),
            Event::Release { t, l, hold_ns } => self.release(t, l, hold_ns),
            _ => self.other_event(e),
        }
    }

    /// The first event before any trace began: it begins one (see [`ModelBuilder::event`]).
    #[cold]
    #[inline(never)]
    fn first_event(&mut self) {
        self.begin_trace("<input>");
        self.model.traces[0].events = 1;
    }

    /// An `acquire` event (see [`ModelBuilder::event`]).
    ///
    /// Written for the usual acquisition (no request waiting, the lock marked written already
    /// or not written, nobody holding it): the lock's [`LockHot`] is read once and written once,
    /// the thread's state is indexed once before the dependency and once after, where the
    /// helpers each indexed both again (every index a load of the table, a bounds test and
    /// the entry's address: about 40 instructions per acquisition on the planted trace).
    #[inline]
    fn acquire(&mut self, t: u64, l: u64, m: Mode, how: How, s: Option<u32>, wait_ns: u64) {
        self.node_allowance += HELD_NODES_PER_ACQUISITION;
        let t = self.thread(t);
        let l = self.lock(l);
        let site = self.site(s);
        if let Some(lost) = self.lost.as_deref_mut() {
            lost.taken(t, l, site);
        }
        let hot = self.hot[l as usize];
        if m == Mode::Exclusive && !hot.written {
            self.mark_written_now(l);
        }
        let state = &mut self.threads[t as usize];
        state.cond_released = None;
        if how != How::Blocking {
            // A successful try ends a streak of failed ones (`try_retried`).
            state.try_retried = None;
        }
        if let Some(p) = &state.pending {
            // A lockcheck trace requests each nested blocking acquisition before it: the grant
            // inline, anything else apart.
            if p.lock == l && p.mode == m {
                let found = p.found;
                self.take_pending(t);
                if let Some(i) = found {
                    self.model.self_deadlocks[i as usize].pending = false;
                }
            } else {
                self.acquire_not_requested(t, l, m, how, site);
            }
        } else {
            if m == Mode::Exclusive && !hot.writes_done {
                self.note_write_slow(t, l);
            }
            // A trace without requests: the acquisition itself is the request (only a lock
            // the thread holds can wait for itself: the test is made here, where the held
            // stack is at hand, not after a call). No thread holds the lock (the count is read
            // first: most acquisitions are of a lock nobody holds, and it is one read).
            if how.blocks() && hot.held > 0 && self.holds(t, l) {
                self.self_check(t, l, m, site, false, 1, false);
            }
        }
        // A thread holding nothing makes no dependency: its hold is the child of its root
        // (what `add_dep` and `push_held` would find, without their calls).
        let state = &self.threads[t as usize];
        let node = if !state.held.is_empty() {
            self.add_dep(t, l, m, how, site, false)
        } else if self.model.held_sets.len() > self.node_limit() {
            None
        } else {
            let root = state.root;
            Some(self.model.held_sets.child(root, (l, m)))
        };
        // `push_held` with the node known, its count of holds added below with the wait.
        let pushed = match node {
            Some(node) => {
                let state = &mut self.threads[t as usize];
                let len = state.held.push(Held {
                    lock: l,
                    mode: m,
                    site,
                    node,
                    sites: EMPTY,
                });
                state.valid = len;
                if len > DEEP_HELD {
                    self.model.anomalies.deep_held += 1;
                }
                1
            }
            None => {
                self.push_held(t, l, m, site, None);
                0
            }
        };
        let hot = &mut self.hot[l as usize];
        hot.held += pushed;
        if wait_ns == 0 && hot.wait_zeros < u32::MAX {
            hot.wait_zeros += 1;
        } else {
            let c = hot.class;
            self.model.classes[c as usize].wait.record(wait_ns);
        }
    }

    /// [`ModelBuilder::acquire`] by a thread with a request waiting for another lock or mode:
    /// the request becomes a dependency never granted, and this acquisition is the request.
    #[inline(never)]
    fn acquire_not_requested(
        &mut self,
        t: ThreadId,
        l: LockId,
        m: Mode,
        how: How,
        site: Option<SiteId>,
    ) {
        self.note_write(t, l, m);
        self.settle(t);
        if how.blocks() && self.hot[l as usize].held > 0 && self.holds(t, l) {
            self.self_check(t, l, m, site, false, 1, false);
        }
    }

    /// A `release` event (see [`ModelBuilder::event`]).
    ///
    /// The thread's state and the lock's [`LockHot`] are each indexed once on the usual path
    /// (the release of the thread's top hold; see [`ModelBuilder::acquire`]).
    #[inline]
    fn release(&mut self, t: u64, l: u64, hold_ns: u64) {
        let t = self.thread(t);
        let l = self.lock(l);
        if self.threads[t as usize].pending.is_some() {
            self.settle(t);
        }
        let state = &mut self.threads[t as usize];
        let cond_released = state.cond_released.take();
        let found = if let Some(i) = state.held.pop_if_top(l) {
            // The top (locks are released in reverse order): a pop, not the call to
            // `memmove` that `Vec::remove` makes even for the last item.
            // The marks of a failed try form a prefix (see `ThreadState::spun`).
            state.spun = state.spun.min(i);
            state.valid = state.valid.min(i);
            state.sites_valid = state.sites_valid.min(i);
            true
        } else if let Some(i) = state.held.rposition_lock(l) {
            state.held.remove(i);
            if i < state.spun {
                state.spun -= 1;
            }
            state.valid = state.valid.min(i);
            state.sites_valid = state.sites_valid.min(i);
            true
        } else {
            false
        };
        if !found {
            if cond_released == Some(l) {
                // The wait's release, written twice.
            } else {
                self.release_elsewhere(l);
            }
        }
        let hot = &mut self.hot[l as usize];
        hot.held -= u32::from(found);
        if hold_ns == 0 && hot.hold_zeros < u32::MAX {
            hot.hold_zeros += 1;
        } else {
            let c = hot.class;
            self.model.classes[c as usize].hold.record(hold_ns);
        }
        if hot.semaphore {
            self.recheck_waits(l);
        }
    }

    /// A release of lock `l` that the releasing thread does not hold: a semaphore's permit
    /// given back by another thread, or an anomaly.
    #[inline(never)]
    fn release_elsewhere(&mut self, l: LockId) {
        // Semaphore permits are legitimately released by other threads. Of several holders (a
        // shared lock, or a trace that makes no sense), the lowest thread id: the map's order
        // is randomly seeded and the choice reaches the report.
        //
        // The current trace's threads are the ids from `trace_threads` on (the map's values), so
        // the first holder in id order is that lowest one: the scan stops there, and is not made
        // at all when no thread holds `l` (its count of holds is 0). On the hostile random trace
        // (releases of locks the thread does not hold, 64 threads holding about 100 locks each)
        // the scan of every thread's held locks was 1.6G instructions.
        let holder = if self.hot[l as usize].held == 0 {
            None
        } else {
            (self.trace_threads..self.threads.len() as ThreadId).find(|&o| self.held_by(o, l))
        };
        match holder {
            Some(o) => {
                let h = &self.threads[o as usize].held;
                let i = h.rposition_lock(l).expect("found above");
                self.remove_held(o, i);
                if !self.hot[l as usize].semaphore {
                    self.model.anomalies.release_by_other_thread += 1;
                }
            }
            None => self.model.anomalies.release_not_held += 1,
        }
    }

    /// Whether thread `o` holds lock `l`, for [`ModelBuilder::release_elsewhere`]: a thread
    /// holding many locks is tested against its [`HeldMask`] first, made again when its held
    /// set changed; one holding [`HeldStack::INDEXED`] or more, by its stack's count of holds
    /// per lock (on the hostile random trace, whose threads hold about 100 locks each, the
    /// masks made again were 147M of its 12,067M instructions).
    fn held_by(&mut self, o: ThreadId, l: LockId) -> bool {
        let state = &self.threads[o as usize];
        let len = state.held.len();
        #[cfg(test)]
        let min = if self.mask_min > 0 {
            self.mask_min
        } else {
            HeldMask::MIN_HOLDS
        };
        #[cfg(not(test))]
        let min = HeldMask::MIN_HOLDS;
        // From `HeldStack::INDEXED` holds on, the stack counts its holds per lock: one lookup.
        if len < min || state.valid != len || len >= HeldStack::<Held>::INDEXED {
            return state.held.holds(l);
        }
        let top = state.held[len - 1].node;
        if self.mask_of.len() <= o as usize {
            self.mask_of.resize(self.threads.len(), NO_MASK);
        }
        let m = match self.mask_of[o as usize] {
            NO_MASK => {
                self.mask_of[o as usize] = self.masks.len() as u32;
                self.masks.push(HeldMask {
                    node: NO_MASK,
                    bits: [0; HeldMask::WORDS],
                });
                self.masks.len() - 1
            }
            m => m as usize,
        };
        let mask = &mut self.masks[m];
        if mask.node != top {
            mask.bits = [0; HeldMask::WORDS];
            for h in &state.held {
                let bit = h.lock as usize % (64 * HeldMask::WORDS);
                mask.bits[bit / 64] |= 1 << (bit % 64);
            }
            mask.node = top;
        }
        mask.may_hold(l) && state.held.iter().any(|h| h.lock == l)
    }

    /// Adds the zero durations counted in lock `l`'s [`LockHot`] to its class's histograms.
    fn flush_zeros(&mut self, l: LockId) {
        let hot = &mut self.hot[l as usize];
        let class = &mut self.model.classes[hot.class as usize];
        class.wait.record_zeros(u64::from(hot.wait_zeros));
        class.hold.record_zeros(u64::from(hot.hold_zeros));
        hot.wait_zeros = 0;
        hot.hold_zeros = 0;
    }

    /// Every other event (see [`ModelBuilder::event`]).
    #[inline(never)]
    fn other_event(&mut self, e: &Event) {
        match e {
            Event::Header {
                hold_resolution_ns, ..
            } => {
                if self.maps.header_seen {
                    self.model.anomalies.misplaced_header += 1;
                }
                self.maps.header_seen = true;
                self.model.hold_resolution_ns =
                    self.model.hold_resolution_ns.max(*hold_resolution_ns);
            }
            Event::Thread { t, name } => {
                let id = self.thread(*t);
                if let Some(name) = name {
                    self.model.threads[id as usize].name = name.clone();
                }
            }
            Event::Class { c, key, kind } => {
                let id = self.class_for_key(key, *kind);
                self.maps.classes.insert(u64::from(*c), id);
            }
            Event::Site { s, loc, frames } => {
                let id = match self.site_by_loc.get(loc.as_str()) {
                    Some(&id) => id,
                    None => {
                        let id = self.model.sites.len() as SiteId;
                        self.model.sites.push(SiteInfo {
                            loc: loc.clone(),
                            frames: Vec::new(),
                        });
                        self.site_by_loc.insert(loc.clone(), id);
                        id
                    }
                };
                let info = &mut self.model.sites[id as usize];
                if info.frames.is_empty() && !frames.is_empty() {
                    info.frames = frames.clone();
                }
                self.maps.sites.insert(u64::from(*s), id);
            }
            Event::Lock { l, c, permits } => {
                let class = match self.maps.classes.get(u64::from(*c)) {
                    Some(id) => id,
                    None => {
                        self.model.anomalies.unknown_class += 1;
                        let trace = self.trace_idx();
                        let key = format!("<undeclared class {c} of trace {}>", trace + 1);
                        let id = self.class_for_key(&key, LockKind::Unknown);
                        self.maps.classes.insert(u64::from(*c), id);
                        id
                    }
                };
                match self.maps.locks.get(*l) {
                    // A repeated declaration: keep the first, but learn the permits (the
                    // runtime declares a semaphore's permits at its first blocking request, and
                    // again when it sees more: tokio's `add_permits`). The most given: a count
                    // taken while a permit moves is low, and too few would make a semaphore
                    // look exhausted (a wait cycle) when it is not.
                    Some(id) => {
                        let lock = &mut self.model.locks[id as usize];
                        lock.permits = lock.permits.max(*permits);
                        lock.most_permits = lock.most_permits.max(*permits);
                    }
                    None => {
                        self.new_lock(*l, class, *permits);
                    }
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
                let t = self.thread(*t);
                let l = self.lock(*l);
                let site = self.site(*s);
                let n = (*n).max(1);
                self.mark_written(l, *m);
                // The same request twice in a row is one (the runtime's semaphore check records
                // it before its permit check, and the acquisition again).
                let again = self.threads[t as usize]
                    .pending
                    .as_ref()
                    .is_some_and(|p| p.lock == l && p.mode == *m && p.n == n);
                if again {
                    return;
                }
                self.note_write(t, l, *m);
                if *m == Mode::Permit && self.hot[l as usize].semaphore {
                    self.permit_nest(t, l, site, n);
                }
                self.threads[t as usize].cond_released = None;
                self.settle(t);
                // The runtime saw the semaphore short with no other holder (see
                // `trace::Short`): the requester's own permits, as replayed, decide.
                let alone = *short == Some(Short::Alone);
                let found = self.self_check(t, l, *m, site, true, n, alone);
                self.set_pending(
                    t,
                    Pending {
                        lock: l,
                        mode: *m,
                        site,
                        n,
                        found,
                    },
                );
                if found.is_none() && self.exhausted(l, n) {
                    self.wait_cycle(t);
                }
            }
            &Event::Acquire {
                t,
                l,
                m,
                how,
                s,
                wait_ns,
            } => self.acquire(t, l, m, how, s, wait_ns),
            Event::Fail {
                t,
                l,
                m,
                how,
                s,
                wait_ns,
                n,
            } => {
                let t = self.thread(*t);
                let l = self.lock(*l);
                let site = self.site(*s);
                // A streak written as one event counts as its `n` failures (0 reads as 1).
                let n = (*n).max(1);
                self.try_retried(t, l, *m, site, n);
                self.mark_written(l, *m);
                // A failed try or timed acquisition withdraws its request: it did not block.
                let withdrawn = self.threads[t as usize]
                    .pending
                    .as_ref()
                    .is_some_and(|p| p.lock == l && p.mode == *m);
                if withdrawn {
                    self.take_pending(t);
                } else {
                    self.settle(t);
                }
                let c = self.model.locks[l as usize].class;
                let class = &mut self.model.classes[c as usize];
                if *how == How::Timed {
                    class.timed_failures += u64::from(n);
                    class.timed_failure_wait_max_ns = class.timed_failure_wait_max_ns.max(*wait_ns);
                } else {
                    class.try_failures += u64::from(n);
                }
            }
            &Event::Release { t, l, hold_ns } => self.release(t, l, hold_ns),
            Event::Convert { t, l, m } => {
                let t = self.thread(*t);
                let l = self.lock(*l);
                self.settle(t);
                let Some(i) = self.threads[t as usize].held.rposition_lock(l) else {
                    self.model.anomalies.convert_not_held += 1;
                    return;
                };
                let old = self.threads[t as usize].held[i].mode;
                self.mark_written(l, *m);
                if old != Mode::Exclusive {
                    self.note_write(t, l, *m);
                }
                // An upgrade waits for the other readers to leave while this thread holds
                // everything it holds: a dependency on the lock in its new mode.
                if *m == Mode::Exclusive && old != Mode::Exclusive {
                    let site = self.threads[t as usize].held[i].site;
                    self.add_dep(t, l, *m, How::Blocking, site, false);
                }
                let state = &mut self.threads[t as usize];
                state.held[i].mode = *m;
                state.valid = state.valid.min(i);
            }
            Event::CondWait { t, cv, l, timed } => {
                let t = self.thread(*t);
                let l = self.lock(*l);
                if let Some(lost) = self.lost.as_deref_mut() {
                    let trace = (self.model.traces.len() - 1) as u32;
                    let held = self.threads[t as usize].held.iter();
                    lost.cond_wait(
                        trace,
                        t,
                        *cv,
                        l,
                        *timed,
                        held.map(|h| (h.lock, h.mode, h.site)),
                    );
                }
                self.settle(t);
                let held = &self.threads[t as usize].held;
                match held.rposition_lock(l) {
                    Some(i) => {
                        self.remove_held(t, i);
                        self.threads[t as usize].cond_released = Some(l);
                    }
                    None => self.model.anomalies.release_not_held += 1,
                }
            }
            Event::Fork { t, child } => {
                let p = self.thread(*t);
                let c = self.thread(*child);
                if p == c {
                    self.model.anomalies.self_fork_join += 1;
                    return;
                }
                // The child, never joined, already ordered before the parent (the parent is
                // its descendant, or joined a descendant of it): a fork cycle.
                let arena = self.model.clocks.arena();
                if !self.threads[c as usize].joined
                    && arena.get(&self.threads[p as usize].clock, u64::from(c)) != 0
                {
                    self.model.anomalies.fork_cycles += 1;
                    return;
                }
                let cs = &mut self.threads[c as usize];
                if cs.forked {
                    self.model.anomalies.forked_twice += 1;
                }
                cs.forked = true;
                self.settle(p);
                let arena = self.model.clocks.arena();
                let parent_clock = arena.clone_clock(&self.threads[p as usize].clock);
                let cs = &mut self.threads[c as usize];
                arena.join(&mut cs.clock, &parent_clock);
                arena.release(parent_clock);
                arena.tick(&mut cs.clock, c);
                cs.clock_id = NO_CLOCK;
                let ps = &mut self.threads[p as usize];
                arena.tick(&mut ps.clock, p);
                ps.clock_id = NO_CLOCK;
            }
            Event::Join { t, child, scope } => {
                let p = self.thread(*t);
                let c = self.thread(*child);
                if p == c {
                    self.model.anomalies.self_fork_join += 1;
                    return;
                }
                self.settle(p);
                let arena = self.model.clocks.arena();
                // A scope's join waits for the child's closure, not for what its thread-local
                // destructors did after `returned`; any other join waits for all of it.
                let returned = self.threads[c as usize].returned.take();
                let child_clock = match returned {
                    Some(r) if *scope => r,
                    other => {
                        if let Some(r) = other {
                            arena.release(r);
                        }
                        arena.clone_clock(&self.threads[c as usize].clock)
                    }
                };
                let ps = &mut self.threads[p as usize];
                arena.join(&mut ps.clock, &child_clock);
                arena.release(child_clock);
                ps.clock_id = NO_CLOCK;
                // Anything the child still does (a bad trace) is not before the join.
                let cs = &mut self.threads[c as usize];
                cs.joined = true;
                arena.tick(&mut cs.clock, c);
                cs.clock_id = NO_CLOCK;
            }
            Event::Drop { l } => {
                // The number is free: the format never uses it again, and a writer that does
                // (numbering its locks by address) declares another lock under it, which must
                // not be taken for the dropped one: its order and the other's would make one
                // instance-level cycle that no run can deadlock on. An event on the number
                // before a new declaration reads as an undeclared lock (a warning).
                self.maps.locks.remove(*l);
            }
            Event::Forget { l, n } => {
                // Permits gone for good: fewer to count held against (a later `lock` event
                // giving more, after `add_permits`, raises them again).
                let l = self.lock(*l);
                let lock = &mut self.model.locks[l as usize];
                lock.permits = lock.permits.map(|p| p.saturating_sub(*n));
            }
            Event::Written { l } => {
                // Written before the trace began: as an exclusive request of it would, at a
                // clock the trace does not show, so (as a task's write at run time) ordered with
                // nothing: between every two reads, whatever writes the trace notes later.
                let l = self.lock(*l);
                self.mark_written(l, Mode::Exclusive);
                self.hot[l as usize].writes_done = true;
                let lock = &mut self.model.locks[l as usize];
                lock.writes.set_unordered();
                let c = lock.class;
                self.model.classes[c as usize].writes.set_unordered();
            }
            Event::ClassWritten { c } => {
                // A class written before the trace began, perhaps only through instances the
                // trace never shows (the runtime's class-level read-read rule counts their
                // writes): as `written` does for the class of an instance, a write ordered with
                // nothing. A class never declared: counted, ignored.
                match self.maps.classes.get(u64::from(*c)) {
                    Some(id) => {
                        let class = &mut self.model.classes[id as usize];
                        class.ever_written = true;
                        class.writes.set_unordered();
                    }
                    None => self.model.anomalies.unknown_class += 1,
                }
            }
            Event::HeldAcrossAwait {
                t,
                l,
                m,
                s,
                h,
                ht,
                hs,
            } => self.held_across_await(*t, *l, *m, *s, *h, *ht, *hs),
            Event::Notify { t, cv, s } => {
                let t = self.thread(*t);
                let site = self.site(*s);
                if let Some(lost) = self.lost.as_deref_mut() {
                    let trace = (self.model.traces.len() - 1) as u32;
                    let held = self.threads[t as usize].held.iter();
                    lost.notify(trace, t, *cv, site, held.map(|h| (h.lock, h.site)));
                }
            }
            Event::Forked { parent, .. } => self.maps.forked_from = *parent,
            Event::Returned { t } => {
                // The clock a scope's join of `t` takes, then a step: what `t` does next is not
                // before that join. Again (a bad trace): the last one counts.
                let t = self.thread(*t);
                self.settle(t);
                let arena = self.model.clocks.arena();
                let now = arena.clone_clock(&self.threads[t as usize].clock);
                let ts = &mut self.threads[t as usize];
                if let Some(old) = ts.returned.replace(now) {
                    arena.release(old);
                }
                arena.tick(&mut ts.clock, t);
                ts.clock_id = NO_CLOCK;
                self.end_read_after_return(t);
            }
            Event::LeftHeld { t, l, m, s } => {
                let thread = self.thread(*t);
                let lock = self.lock(*l);
                let site = self.site(*s);
                let held: Vec<LockId> = self.threads[thread as usize]
                    .held
                    .iter()
                    .map(|h| h.lock)
                    .filter(|&h| h != lock)
                    .collect();
                let parent = self.maps.forked_from;
                match self
                    .model
                    .left_held
                    .iter_mut()
                    .find(|f| (f.lock, f.site) == (lock, site))
                {
                    Some(f) => f.count += 1,
                    None => self.model.left_held.push(LeftHeld {
                        thread,
                        lock,
                        mode: *m,
                        site,
                        held,
                        parent,
                        count: 1,
                    }),
                }
            }
            Event::Stats { c, stats } => {
                let Some(id) = self.maps.classes.get(u64::from(*c)) else {
                    self.model.anomalies.unknown_class += 1;
                    return;
                };
                let s = self.model.classes[id as usize]
                    .stats
                    .get_or_insert_with(Default::default);
                // Saturating: the figures come from the trace, which may be hostile.
                s.acquisitions = s.acquisitions.saturating_add(stats.acquisitions);
                s.contended = s.contended.saturating_add(stats.contended);
                s.wait_total_ns = s.wait_total_ns.saturating_add(stats.wait_total_ns);
                s.wait_max_ns = s.wait_max_ns.max(stats.wait_max_ns);
                s.hold_total_ns = s.hold_total_ns.saturating_add(stats.hold_total_ns);
                s.hold_max_ns = s.hold_max_ns.max(stats.hold_max_ns);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use lockcheck_core::trace::LockKind;

    /// Parses JSON lines into events (tests only; the real readers live in `read`).
    pub(crate) fn events(text: &str) -> Vec<Event> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }

    pub(crate) fn model_of(traces: &[(&str, &str)]) -> Model {
        let mut b = ModelBuilder::new();
        for (name, text) in traces {
            b.begin_trace(name);
            for e in events(text) {
                b.event(&e);
            }
        }
        b.finish()
    }

    /// A random trace of `n` lock events over `threads` threads and `locks` locks, with sites
    /// (declared, and some acquisitions without one), nesting up to 5 deep, releases in and
    /// out of order, tries, reads, forks and joins (so that clocks differ), and releases of
    /// locks not held.
    pub(crate) fn random_events(seed: u64, threads: u64, locks: u64, n: usize) -> Vec<Event> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = |k: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % k.max(1)
        };
        let mut out: Vec<Event> = (1..=8)
            .map(|s| Event::Site {
                s,
                loc: format!("src/lib.rs:{s}:1"),
                frames: Vec::new(),
            })
            .collect();
        let mut held: Vec<Vec<u64>> = vec![Vec::new(); threads as usize + 1];
        for t in 2..=threads {
            if next(2) == 0 {
                out.push(Event::Fork { t: 1, child: t });
            }
        }
        while out.len() < n {
            let t = 1 + next(threads);
            let h = &mut held[t as usize];
            match next(12) {
                0 if t > 1 => out.push(Event::Join {
                    t: 1,
                    child: t,
                    scope: false,
                }),
                1 if t > 1 => out.push(Event::Fork { t: 1, child: t }),
                2 => out.push(Event::Release {
                    t,
                    l: 1 + next(locks),
                    hold_ns: next(3),
                }),
                3..=5 if !h.is_empty() => {
                    let i = if next(3) == 0 {
                        next(h.len() as u64) as usize
                    } else {
                        h.len() - 1
                    };
                    let l = h.remove(i);
                    out.push(Event::Release { t, l, hold_ns: 0 });
                }
                _ if h.len() < 5 => {
                    let l = 1 + next(locks);
                    if h.contains(&l) {
                        continue;
                    }
                    h.push(l);
                    out.push(Event::Acquire {
                        t,
                        l,
                        m: if next(5) == 0 {
                            Mode::Shared
                        } else {
                            Mode::Exclusive
                        },
                        how: if next(7) == 0 {
                            How::Try
                        } else {
                            How::Blocking
                        },
                        s: if next(6) == 0 {
                            None
                        } else {
                            Some(1 + next(8) as u32)
                        },
                        wait_ns: next(2),
                    });
                }
                _ => {}
            }
        }
        out
    }

    /// What a model holds that the replay builds: every dependency and its sites, the
    /// interned held sets and sites, the statistics and the anomalies.
    fn model_state(m: &Model) -> String {
        let held: Vec<Vec<(LockId, Mode)>> = (0..m.held_sets.len() as u32)
            .map(|n| m.held_sets.to_vec(n))
            .collect();
        let sites: Vec<Vec<Option<SiteId>>> = (0..m.held_sites.len() as u32)
            .map(|n| m.held_sites.to_vec(n))
            .collect();
        format!(
            "{:?}\n{:?}\n{held:?}\n{sites:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{}",
            m.deps,
            m.more_sites,
            m.threads,
            m.self_deadlocks,
            m.clocks,
            m.traces,
            m.classes,
            m.locks,
            m.anomalies,
            m.approximations,
            m.events()
        )
    }

    /// [`ModelBuilder::event_batch`] and the one-step interning of a nested acquisition's held
    /// sites in [`ModelBuilder::add_dep`] build the model that [`ModelBuilder::event`] of each
    /// event, with every held sites node interned by [`ModelBuilder::top_sites`], builds:
    /// random traces, cut into batches of random sizes (empty ones too), two traces in a row.
    #[test]
    fn the_batch_replay_and_the_one_step_sites_build_the_model_of_the_event_by_event_replay() {
        for seed in 1..=24u64 {
            let threads = 1 + seed % 6;
            let locks = 2 + seed % 11;
            let traces = [
                random_events(seed, threads, locks, 400 + 50 * seed as usize),
                random_events(seed + 100, threads, locks, 300),
            ];
            let mut by_event = ModelBuilder::new();
            by_event.sites_by_top_sites = true;
            let mut by_batch = ModelBuilder::new();
            let mut cut = seed;
            for (i, events) in traces.iter().enumerate() {
                let name = format!("trace{i}");
                by_event.begin_trace(&name);
                by_batch.begin_trace(&name);
                for e in events {
                    by_event.event(e);
                }
                let mut rest = &events[..];
                while !rest.is_empty() {
                    cut = cut
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let k = ((cut >> 33) % 40) as usize;
                    let (batch, more) = rest.split_at(k.min(rest.len()));
                    let mut batch = batch.to_vec();
                    by_batch.event_batch(&mut batch);
                    assert!(batch.is_empty());
                    rest = more;
                }
            }
            let (a, b) = (by_event.finish(), by_batch.finish());
            assert!(!a.deps.is_empty() && a.held_sites.len() > 1, "seed {seed}");
            assert_eq!(model_state(&a), model_state(&b), "seed {seed}");
        }
    }

    /// [`ModelBuilder::event_batch`] reads acquisitions and releases in place and moves every
    /// other event out of the batch: the events that own strings (thread names, sites, class
    /// keys), between lock events of every kind, reach the model as [`ModelBuilder::event`]
    /// gives them, and the batch is left empty with its allocation.
    #[test]
    fn a_batch_moves_its_events_with_strings_into_the_model() {
        let mut events = vec![Event::Class {
            c: 1,
            key: "pool".into(),
            kind: LockKind::Mutex,
        }];
        for i in 1..=40u64 {
            events.push(Event::Thread {
                t: i,
                name: Some(format!("worker-{i}")),
            });
            events.push(Event::Site {
                s: i as u32,
                loc: format!("src/pool.rs:{i}:9"),
                frames: Vec::new(),
            });
            events.push(Event::Lock {
                l: i,
                c: 1,
                permits: None,
            });
            for l in [i, 1 + i % 7] {
                events.push(Event::Acquire {
                    t: i,
                    l,
                    m: Mode::Exclusive,
                    how: How::Blocking,
                    s: Some(i as u32),
                    wait_ns: i % 3,
                });
            }
            events.push(Event::Release {
                t: i,
                l: 1 + i % 7,
                hold_ns: i % 2,
            });
        }
        let mut by_event = ModelBuilder::new();
        by_event.begin_trace("t");
        for e in &events {
            by_event.event(e);
        }
        let mut by_batch = ModelBuilder::new();
        by_batch.begin_trace("t");
        let mut batch = events.clone();
        let capacity = batch.capacity();
        by_batch.event_batch(&mut batch);
        assert!(batch.is_empty());
        assert_eq!(batch.capacity(), capacity);
        let (a, b) = (by_event.finish(), by_batch.finish());
        let names = |m: &Model| -> Vec<String> {
            (0..m.threads.len() as u32)
                .map(|t| m.thread_name(t))
                .chain((0..m.sites.len() as u32).map(|s| m.site_loc(s).to_string()))
                .chain(m.classes.iter().map(|c| c.key.clone()))
                .collect()
        };
        for name in ["worker-40", "src/pool.rs:40:9", "pool"] {
            assert!(names(&a).iter().any(|n| n.contains(name)), "{name}");
        }
        assert_eq!(names(&a), names(&b));
        assert_eq!(model_state(&a), model_state(&b));
        assert_eq!(a.deps.len(), 40);
    }

    /// The dependencies queued by [`ModelBuilder::defer_dep`] get the records, counts, sites
    /// and numbers that recording each when it is made gives: random traces (forks and joins,
    /// so that a held set gets dependencies of several clocks; tries; the same nesting made
    /// again and again by few locks), in batches of every size from one event to the whole
    /// trace, two traces in a row, compared with the unqueued path fed the same batches.
    #[test]
    fn the_queued_dependencies_get_the_records_of_the_unqueued_path() {
        let mut found_again = 0;
        for seed in 1..=40u64 {
            let threads = 1 + seed % 5;
            let locks = 2 + seed % 9;
            let traces = [
                random_events(seed, threads, locks, 500 + 40 * seed as usize),
                random_events(seed + 300, threads, locks, 400),
            ];
            let batch = [1, 3, 7, 64, usize::MAX][seed as usize % 5];
            let mut queued = ModelBuilder::new();
            let mut unqueued = ModelBuilder::new();
            unqueued.deps_unqueued = true;
            for (i, events) in traces.iter().enumerate() {
                let name = format!("trace{i}");
                for b in [&mut queued, &mut unqueued] {
                    b.begin_trace(&name);
                    for chunk in events.chunks(batch.min(events.len())) {
                        let mut chunk = chunk.to_vec();
                        b.event_batch(&mut chunk);
                    }
                }
            }
            let (a, b) = (queued.finish(), unqueued.finish());
            assert!(!a.deps.is_empty(), "seed {seed}");
            found_again += a.deps.iter().filter(|d| d.count > 1).count();
            assert_eq!(model_state(&a), model_state(&b), "seed {seed}");
            assert_eq!(
                format!("{:?}", a.dep_keys),
                format!("{:?}", b.dep_keys),
                "seed {seed}"
            );
        }
        assert!(found_again > 100, "{found_again} dependencies made again");
    }

    /// [`ModelBuilder::release_elsewhere`] with the threads' [`HeldMask`] summaries takes the
    /// hold of the thread that the scan of every held stack takes: random traces with releases
    /// of locks held by other threads (nesting up to 5, releases out of order, forks and joins),
    /// over up to 3000 locks (bits shared by locks 1024 apart), summaries made from one or three
    /// holds on; the models and the held stacks left compared with those of the scan alone.
    #[test]
    fn the_held_masks_find_the_holder_that_the_scan_finds() {
        let (mut masked_scans, mut elsewhere) = (0, 0);
        for seed in 1..=32u64 {
            let threads = 2 + seed % 7;
            let locks = [3, 12, 40, 1500, 3000][seed as usize % 5];
            let traces = [
                random_events(seed, threads, locks, 600 + 40 * seed as usize),
                random_events(seed + 500, threads, locks, 300),
            ];
            let mut scan = ModelBuilder::new();
            scan.mask_min = usize::MAX;
            let mut masked = ModelBuilder::new();
            masked.mask_min = 1 + 2 * (seed as usize % 2);
            for (i, events) in traces.iter().enumerate() {
                let name = format!("trace{i}");
                scan.begin_trace(&name);
                masked.begin_trace(&name);
                for e in events {
                    scan.event(e);
                    masked.event(e);
                }
            }
            masked_scans += masked.masks.len();
            let held = |b: &ModelBuilder| {
                format!(
                    "{:?}",
                    b.threads.iter().map(|s| &s.held).collect::<Vec<_>>()
                )
            };
            assert_eq!(held(&scan), held(&masked), "seed {seed}");
            assert!(scan.masks.is_empty());
            let (a, b) = (scan.finish(), masked.finish());
            elsewhere += a.anomalies.release_by_other_thread;
            assert_eq!(model_state(&a), model_state(&b), "seed {seed}");
        }
        assert!(masked_scans > 50, "{masked_scans} summaries");
        assert!(elsewhere > 200, "{elsewhere} releases by another thread");
    }

    fn acq(t: u64, l: u64) -> Event {
        Event::Acquire {
            t,
            l,
            m: Mode::Exclusive,
            how: How::Blocking,
            s: None,
            wait_ns: 0,
        }
    }

    /// The first child beside its node, the direct-mapped cache and the open-addressing index
    /// (through its growth) find every child again, and new nodes are numbered in order.
    #[test]
    fn trie_children_are_found_again_whichever_way_they_are_stored() {
        let mut t: Trie<(u32, Mode), u32> = Trie::new();
        let mut reference: HashMap<(u32, (u32, Mode)), u32> = HashMap::new();
        let roots: Vec<u32> = (0..4).map(|_| t.new_root()).collect();
        let mut state = 7u64;
        let mut rand = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let z = (state ^ (state >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z ^ (z >> 29)
        };
        for _ in 0..300_000 {
            let r = rand();
            // Parents: the roots often (many children each), any node otherwise.
            let parent = if r % 3 == 0 {
                roots[(r >> 8) as usize % roots.len()]
            } else {
                (r >> 8) as u32 % t.len() as u32
            };
            // Every mode, and locks at both ends of the packed range (the packing is one to one).
            let mode = match r >> 60 {
                0 => Mode::Shared,
                1 => Mode::SharedRecursive,
                2 => Mode::Upgradable,
                3 => Mode::Permit,
                _ => Mode::Exclusive,
            };
            let lock = (r >> 40) as u32 % 600;
            let lock = if r & 1 << 20 != 0 {
                MAX_LOCKS as u32 - 1 - lock
            } else {
                lock
            };
            let item = (lock, mode);
            let before = t.len() as u32;
            let c = t.child(parent, item);
            let want = *reference.entry((parent, item)).or_insert(before);
            assert_eq!(c, want, "child of {parent} by {item:?}");
            assert_eq!(t.len() as u32, before + u32::from(c == before));
            assert_eq!(t.nodes[c as usize].0, parent);
            assert_eq!(t.rev_iter(c).next(), Some(item));
        }
        assert!(t.len() > 100_000, "{}", t.len());
    }

    /// Trie items pack one to one into 32 bits and back: every mode with the lowest and highest
    /// locks, and the sites with `None` and the highest site.
    #[test]
    fn trie_items_pack_one_to_one() {
        let modes = [
            Mode::Exclusive,
            Mode::Shared,
            Mode::SharedRecursive,
            Mode::Upgradable,
            Mode::Permit,
        ];
        let mut seen = std::collections::HashSet::new();
        for m in modes {
            for l in [0, 1, 2, MAX_LOCKS as u32 / 2, MAX_LOCKS as u32 - 1] {
                let bits = (l, m).pack();
                assert!(seen.insert(bits), "{l} {m:?} packs as another item");
                assert_eq!(<(LockId, Mode)>::unpack(bits), (l, m));
            }
        }
        for site in [None, Some(0), Some(1), Some(u32::MAX - 1)] {
            assert_eq!(Option::<SiteId>::unpack(site.pack()), site);
        }
        assert_ne!(None::<SiteId>.pack(), Some(0).pack());
    }

    /// The same for a trie of sites (items `None` and `Some(0)` apart: their index keys are
    /// their bits), whose index grows with zeroed tables (a free slot is child 0, never a
    /// child): every child found again through several doublings.
    #[test]
    fn site_trie_children_are_found_again_through_the_index_growth() {
        let mut t: Trie<Option<SiteId>> = Trie::new();
        let mut reference: HashMap<(u32, Option<SiteId>), u32> = HashMap::new();
        let mut x = 11u64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let parent = if x % 4 == 0 {
                EMPTY
            } else {
                (x >> 8) as u32 % t.len() as u32
            };
            let item = match (x >> 40) % 300 {
                0 => None,
                1 => Some(u32::MAX - 1),
                s => Some(s as u32 - 2),
            };
            let before = t.len() as u32;
            let c = t.child(parent, item);
            assert_ne!(c, FREE_SLOT);
            let want = *reference.entry((parent, item)).or_insert(before);
            assert_eq!(c, want, "child of {parent} by {item:?}");
            assert_eq!(t.nodes[c as usize].0, parent);
            assert_eq!(t.rev_iter(c).next(), Some(item));
        }
        assert!(t.index.len > 50_000, "{}", t.index.len);
    }

    #[test]
    fn repeated_nesting_makes_one_dependency() {
        let mut b = ModelBuilder::new();
        b.event(&Event::Class {
            c: 1,
            key: "A".into(),
            kind: LockKind::Mutex,
        });
        b.event(&Event::Lock {
            l: 1,
            c: 1,
            permits: None,
        });
        b.event(&Event::Lock {
            l: 2,
            c: 1,
            permits: None,
        });
        for _ in 0..1000 {
            b.event(&acq(1, 1));
            b.event(&acq(1, 2));
            b.event(&Event::Release {
                t: 1,
                l: 2,
                hold_ns: 5,
            });
            b.event(&Event::Release {
                t: 1,
                l: 1,
                hold_ns: 10,
            });
        }
        let m = b.finish();
        assert_eq!(m.deps.len(), 1);
        assert_eq!(m.deps[0].count, 1000);
        assert_eq!(m.classes[0].hold.count(), 2000);
        assert_eq!(m.anomalies.warnings(), Vec::<String>::new());
    }

    /// A lock released by a thread that does not hold it leaves its holder of lowest id among
    /// the current trace's threads (ids by first sight, not the trace's numbers), and none of
    /// an earlier trace: the one that keeps it makes the next dependency.
    #[test]
    fn a_release_elsewhere_takes_the_hold_of_the_lowest_thread_id() {
        let mut b = ModelBuilder::new();
        let class = |b: &mut ModelBuilder| {
            b.event(&Event::Class {
                c: 1,
                key: "A".into(),
                kind: LockKind::Mutex,
            });
            for l in [1, 2] {
                b.event(&Event::Lock {
                    l,
                    c: 1,
                    permits: None,
                });
            }
        };
        b.begin_trace("first");
        class(&mut b);
        // A hold that ends with its trace.
        b.event(&acq(1, 1));
        b.begin_trace("second");
        class(&mut b);
        // T7 is seen first: the lower id of the two holders of lock 1, though its number is higher.
        b.event(&acq(7, 1));
        b.event(&acq(6, 1));
        b.event(&Event::Release {
            t: 5,
            l: 1,
            hold_ns: 0,
        });
        b.event(&acq(7, 2));
        b.event(&acq(6, 2));
        let m = b.finish();
        assert_eq!(m.anomalies.release_by_other_thread, 1, "{:?}", m.anomalies);
        assert_eq!(m.anomalies.release_not_held, 0, "{:?}", m.anomalies);
        let nested: Vec<&str> = m
            .deps
            .iter()
            .filter(|r| m.held(r.held).next().is_some())
            .map(|r| m.threads[r.thread as usize].name.as_str())
            .collect();
        assert_eq!(nested, vec!["T6"]);
        // The first trace's hold was forgotten with it: a release there finds no holder.
        let mut b = ModelBuilder::new();
        b.begin_trace("first");
        class(&mut b);
        b.event(&acq(1, 1));
        b.begin_trace("second");
        class(&mut b);
        b.event(&Event::Release {
            t: 2,
            l: 1,
            hold_ns: 0,
        });
        let m = b.finish();
        assert_eq!(m.anomalies.release_not_held, 1, "{:?}", m.anomalies);
        assert_eq!(m.anomalies.release_by_other_thread, 0, "{:?}", m.anomalies);
    }

    /// A fork or join of a thread with itself and a thread forked twice are warned about (the
    /// issue: "with a warning where the trace makes no sense"); a fork, then a join, of another
    /// thread is not.
    #[test]
    fn nonsense_forks_and_joins_are_warned() {
        let mut b = ModelBuilder::new();
        b.begin_trace("forks");
        b.event(&Event::Fork { t: 1, child: 2 });
        b.event(&Event::Join {
            t: 1,
            child: 2,
            scope: false,
        });
        let m = b.finish();
        assert_eq!(m.anomalies.self_fork_join, 0);
        assert_eq!(m.anomalies.forked_twice, 0);
        assert!(m.anomalies.warnings().is_empty(), "{:?}", m.anomalies);

        let mut b = ModelBuilder::new();
        b.begin_trace("nonsense");
        b.event(&Event::Fork { t: 1, child: 1 });
        b.event(&Event::Join {
            t: 3,
            child: 3,
            scope: false,
        });
        b.event(&Event::Fork { t: 1, child: 2 });
        b.event(&Event::Fork { t: 4, child: 2 });
        b.event(&Event::Fork { t: 2, child: 1 });
        let m = b.finish();
        assert_eq!(m.anomalies.self_fork_join, 2, "{:?}", m.anomalies);
        assert_eq!(m.anomalies.forked_twice, 1, "{:?}", m.anomalies);
        // 2 forks 1, its parent: a fork cycle.
        assert_eq!(m.anomalies.fork_cycles, 1, "{:?}", m.anomalies);
        let w = m.anomalies.warnings();
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w.iter().any(|w| w.contains("fork cycle")), "{w:?}");

        // A trace started mid-run joins a thread it never saw start; a thread number joined,
        // then forked again (reused by another tool's tracer), is no fork cycle.
        let mut b = ModelBuilder::new();
        b.begin_trace("mid-run");
        b.event(&Event::Join {
            t: 1,
            child: 5,
            scope: false,
        });
        b.event(&Event::Fork { t: 1, child: 5 });
        b.event(&Event::Fork { t: 5, child: 6 });
        b.event(&Event::Join {
            t: 1,
            child: 6,
            scope: false,
        });
        let m = b.finish();
        assert!(m.anomalies.warnings().is_empty(), "{:?}", m.anomalies);
        assert!(w.iter().any(|w| w.contains("with itself")), "{w:?}");
        assert!(w.iter().any(|w| w.contains("already forked")), "{w:?}");
    }

    #[test]
    fn nonsense_is_counted_not_fatal() {
        let mut b = ModelBuilder::new();
        b.event(&Event::Release {
            t: u64::MAX,
            l: u64::MAX,
            hold_ns: 0,
        });
        b.event(&acq(1, 7));
        b.event(&acq(2, 8));
        b.event(&Event::Release {
            t: 2,
            l: 7,
            hold_ns: 0,
        });
        b.event(&Event::Convert {
            t: 3,
            l: 9,
            m: Mode::Shared,
        });
        b.event(&Event::Lock {
            l: 1,
            c: 99,
            permits: None,
        });
        b.event(&Event::Acquire {
            t: 1,
            l: 8,
            m: Mode::Shared,
            how: How::Try,
            s: Some(77),
            wait_ns: 0,
        });
        let m = b.finish();
        assert_eq!(m.anomalies.release_not_held, 1);
        assert_eq!(m.anomalies.release_by_other_thread, 1);
        assert_eq!(m.anomalies.unknown_class, 1);
        assert_eq!(m.anomalies.unknown_site, 1);
        assert_eq!(m.anomalies.convert_not_held, 1);
        assert!(m.anomalies.unknown_lock >= 3);
        assert!(!m.anomalies.warnings().is_empty());
    }

    /// Found by the fuzz smoke: statistics lines whose totals overflow when added up.
    #[test]
    fn huge_statistics_saturate() {
        let mut b = ModelBuilder::new();
        b.event(&Event::Class {
            c: 1,
            key: "A".into(),
            kind: LockKind::Mutex,
        });
        let stats = ClassStats {
            acquisitions: u64::MAX,
            contended: u64::MAX,
            wait_total_ns: u64::MAX,
            wait_max_ns: u64::MAX,
            hold_total_ns: u64::MAX,
            hold_max_ns: u64::MAX,
        };
        for _ in 0..2 {
            b.event(&Event::Stats {
                c: 1,
                stats: stats.clone(),
            });
        }
        let m = b.finish();
        let s = m.classes[0].stats.as_ref().expect("stats kept");
        assert_eq!(s.acquisitions, u64::MAX);
        assert_eq!(s.hold_total_ns, u64::MAX);
    }

    #[test]
    fn fork_orders_parent_before_child_and_join_child_before_parent() {
        let m = model_of(&[(
            "t",
            r#"{"e":"lock","l":1,"c":1}
{"e":"lock","l":2,"c":1}
{"e":"acquire","t":1,"l":1,"m":"w"}
{"e":"acquire","t":1,"l":2,"m":"w"}
{"e":"release","t":1,"l":2}
{"e":"release","t":1,"l":1}
{"e":"fork","t":1,"child":2}
{"e":"acquire","t":2,"l":2,"m":"w"}
{"e":"acquire","t":2,"l":1,"m":"w"}
{"e":"release","t":2,"l":1}
{"e":"release","t":2,"l":2}
{"e":"join","t":1,"child":2}
{"e":"acquire","t":1,"l":1,"m":"w"}
{"e":"acquire","t":1,"l":2,"m":"w"}
"#,
        )]);
        assert_eq!(m.deps.len(), 3);
        let (a, b, c) = (m.dep(0), m.dep(1), m.dep(2));
        assert!(a.happens_before(&b));
        assert!(b.happens_before(&c));
    }

    #[test]
    fn a_request_left_waiting_is_a_dependency() {
        let m = model_of(&[(
            "t",
            r#"{"e":"lock","l":1,"c":1}
{"e":"lock","l":2,"c":1}
{"e":"acquire","t":1,"l":1,"m":"w"}
{"e":"request","t":1,"l":2,"m":"w"}
"#,
        )]);
        assert_eq!(m.deps.len(), 1);
        assert!(m.deps[0].pending);
    }
}

#[cfg(test)]
mod request_tests {
    use super::tests::model_of;
    use super::*;

    const LOCKS: &str = r#"{"e":"class","c":1,"key":"m","kind":"mutex"}
{"e":"class","c":2,"key":"rw","kind":"rwlock"}
{"e":"class","c":3,"key":"sem","kind":"semaphore"}
{"e":"class","c":4,"key":"a","kind":"mutex"}
{"e":"class","c":5,"key":"b","kind":"mutex"}
{"e":"lock","l":1,"c":1}
{"e":"lock","l":2,"c":2}
{"e":"lock","l":3,"c":3}
{"e":"lock","l":4,"c":4}
{"e":"lock","l":5,"c":5}
"#;

    fn with_locks(body: &str) -> Model {
        model_of(&[("t", &format!("{LOCKS}{body}"))])
    }

    fn kinds(m: &Model) -> Vec<(&'static str, String)> {
        m.self_deadlocks
            .iter()
            .map(|f| (f.kind.name(), m.lock_name(f.lock)))
            .collect()
    }

    /// A `fail` with a count `n` (a streak the runtime wrote as one event) counts as `n`
    /// failures in a row: the retry rule fires where the streak reaches `TRY_RETRIES`, across
    /// events, once; a streak broken (a hold not kept) starts over.
    #[test]
    fn a_counted_fail_is_that_many_failures_in_a_row() {
        let spin = |fails: &str| {
            with_locks(&format!(
                r#"{{"e":"acquire","t":1,"l":1,"m":"w"}}
{fails}{{"e":"release","t":1,"l":1}}
"#
            ))
        };
        let fail = |n: u32| {
            format!("{{\"e\":\"fail\",\"t\":1,\"l\":1,\"m\":\"w\",\"how\":\"try\",\"n\":{n}}}\n")
        };
        let one = "{\"e\":\"fail\",\"t\":1,\"l\":1,\"m\":\"w\",\"how\":\"try\"}\n";
        let fires = |m: &Model| kinds(m) == [("self-deadlock", "m".to_string())];
        // 1 + 998 + 1, 1 + 999, one event of a million, 1 + 999 + 1000.
        for fails in [
            format!("{one}{}{one}", fail(998)),
            format!("{one}{}", fail(TRY_RETRIES - 1)),
            fail(1_000_000),
            format!("{one}{}{}", fail(999), fail(1000)),
        ] {
            let m = spin(&fails);
            assert!(fires(&m), "{fails}: {:?}", kinds(&m));
            assert_eq!(m.self_deadlocks[0].count, 1, "{fails}");
        }
        // 1 + 998, and two streaks of 999 split by a new hold of the lock (the hold not kept).
        for fails in [
            format!("{one}{}", fail(998)),
            format!(
                "{}{{\"e\":\"release\",\"t\":1,\"l\":1}}\n{{\"e\":\"acquire\",\"t\":1,\"l\":1,\"m\":\"w\"}}\n{}",
                fail(999),
                fail(999)
            ),
        ] {
            let m = spin(&fails);
            assert!(kinds(&m).is_empty(), "{fails}: {:?}", kinds(&m));
        }
    }

    #[test]
    fn a_request_of_a_held_mutex_is_a_self_deadlock() {
        let m = with_locks(
            r#"{"e":"acquire","t":1,"l":1,"m":"w"}
{"e":"request","t":1,"l":1,"m":"w"}
{"e":"release","t":1,"l":1}
"#,
        );
        assert_eq!(kinds(&m), [("self-deadlock", "m".to_string())]);
        assert!(m.self_deadlocks[0].pending);
        // Released by the unwinding, never granted: also a (pending) dependency on itself.
        assert_eq!(m.deps.len(), 1);
        assert!(m.deps[0].pending);
    }

    #[test]
    fn rwlock_self_conflicts_follow_the_runtime_table() {
        let m = with_locks(
            r#"{"e":"acquire","t":1,"l":2,"m":"r"}
{"e":"request","t":1,"l":2,"m":"w"}
{"e":"release","t":1,"l":2}
{"e":"acquire","t":2,"l":2,"m":"r"}
{"e":"request","t":2,"l":2,"m":"r"}
{"e":"acquire","t":2,"l":2,"m":"r"}
{"e":"release","t":2,"l":2}
{"e":"release","t":2,"l":2}
{"e":"acquire","t":3,"l":2,"m":"r"}
{"e":"request","t":3,"l":2,"m":"rr"}
{"e":"acquire","t":3,"l":2,"m":"rr"}
{"e":"release","t":3,"l":2}
{"e":"release","t":3,"l":2}
{"e":"acquire","t":4,"l":2,"m":"u"}
{"e":"request","t":4,"l":2,"m":"r"}
{"e":"acquire","t":4,"l":2,"m":"r"}
"#,
        );
        assert_eq!(
            kinds(&m),
            [
                ("self-deadlock", "rw".to_string()),
                ("recursive-read", "rw".to_string())
            ]
        );
        // The recursive read was granted (under `warn`): not pending.
        assert!(!m.self_deadlocks[1].pending);
    }

    #[test]
    fn a_semaphore_self_deadlocks_only_holding_every_permit() {
        let m = with_locks(
            r#"{"e":"acquire","t":1,"l":3,"m":"p"}
{"e":"lock","l":3,"c":3,"permits":2}
{"e":"request","t":1,"l":3,"m":"p"}
{"e":"acquire","t":1,"l":3,"m":"p"}
"#,
        );
        assert!(m.self_deadlocks.is_empty(), "{:?}", m.self_deadlocks);
        assert_eq!(
            m.locks[2].permits,
            Some(2),
            "a repeated `lock` adds the permits"
        );
        let m = with_locks(
            r#"{"e":"acquire","t":1,"l":3,"m":"p"}
{"e":"lock","l":3,"c":3,"permits":1}
{"e":"request","t":1,"l":3,"m":"p"}
{"e":"request","t":1,"l":3,"m":"p"}
"#,
        );
        assert_eq!(kinds(&m), [("self-deadlock", "sem".to_string())]);
        assert_eq!(m.self_deadlocks[0].count, 1, "a repeated request is one");
    }

    #[test]
    fn permits_requested_holding_permits_are_found_once_concurrent_threads_can_hold_them_all() {
        let nest = |t: u32| {
            format!(
                "{{\"e\":\"acquire\",\"t\":{t},\"l\":3,\"m\":\"p\"}}\n\
                 {{\"e\":\"request\",\"t\":{t},\"l\":3,\"m\":\"p\"}}\n\
                 {{\"e\":\"acquire\",\"t\":{t},\"l\":3,\"m\":\"p\"}}\n\
                 {{\"e\":\"release\",\"t\":{t},\"l\":3}}\n\
                 {{\"e\":\"release\",\"t\":{t},\"l\":3}}\n"
            )
        };
        let sem = "{\"e\":\"lock\",\"l\":3,\"c\":3,\"permits\":2}\n";
        // Two threads with no fork/join between them: they can run at once.
        let m = with_locks(&format!("{sem}{}{}", nest(1), nest(2)));
        assert_eq!(m.permit_nests.len(), 1, "{:?}", m.permit_nests);
        assert_eq!(m.permit_nests[0].requests.len(), 2);
        // One thread (twice): silent.
        let m = with_locks(&format!("{sem}{}{}", nest(1), nest(1)));
        assert!(m.permit_nests.is_empty(), "{:?}", m.permit_nests);
        // The second thread spawned after the first was joined: ordered, silent.
        let m = with_locks(&format!(
            "{sem}{{\"e\":\"fork\",\"t\":1,\"child\":2}}\n{}{{\"e\":\"join\",\"t\":1,\"child\":2}}\n\
             {{\"e\":\"fork\",\"t\":1,\"child\":4}}\n{}",
            nest(2),
            nest(4)
        ));
        assert!(m.permit_nests.is_empty(), "{:?}", m.permit_nests);
        // Three permits: two threads holding one each are not enough.
        let sem3 = "{\"e\":\"lock\",\"l\":3,\"c\":3,\"permits\":3}\n";
        let m = with_locks(&format!("{sem3}{}{}", nest(1), nest(2)));
        assert!(m.permit_nests.is_empty(), "{:?}", m.permit_nests);
    }

    #[test]
    fn a_semaphore_has_the_most_permits_its_lock_events_give() {
        // Added permits (tokio's `add_permits`) are written again; a lower count (taken while a
        // permit moved) does not lower them.
        let m = with_locks(
            r#"{"e":"lock","l":3,"c":3,"permits":2}
{"e":"lock","l":3,"c":3,"permits":1}
{"e":"lock","l":3,"c":3}
"#,
        );
        assert_eq!(m.locks[2].permits, Some(2));
        let m = with_locks(
            r#"{"e":"lock","l":3,"c":3,"permits":2}
{"e":"acquire","t":1,"l":3,"m":"p"}
{"e":"acquire","t":2,"l":3,"m":"p"}
{"e":"lock","l":3,"c":3,"permits":4}
{"e":"request","t":1,"l":3,"m":"p"}
{"e":"request","t":2,"l":3,"m":"p"}
"#,
        );
        assert_eq!(m.locks[2].permits, Some(4));
        assert!(
            m.wait_cycles.is_empty(),
            "two permits free: {:?}",
            m.wait_cycles
        );
    }

    /// Two tasks of a pool of two permits (a semaphore) each hold one and request another: the
    /// second request closes the wait cycle (whether it is then granted, after the runtime
    /// stopped the other, or not).
    const POOL_CYCLE: &str = r#"{"e":"acquire","t":1,"l":3,"m":"p","s":1}
{"e":"lock","l":3,"c":3,"permits":2}
{"e":"request","t":1,"l":3,"m":"p","s":2}
{"e":"acquire","t":2,"l":3,"m":"p","s":1}
{"e":"request","t":2,"l":3,"m":"p","s":2}
{"e":"release","t":1,"l":3}
{"e":"acquire","t":2,"l":3,"m":"p","s":2}
{"e":"release","t":2,"l":3}
{"e":"release","t":2,"l":3}
"#;

    #[test]
    fn a_wait_cycle_through_one_semaphore_is_found_when_it_closes() {
        let m = with_locks(POOL_CYCLE);
        assert_eq!(m.wait_cycles.len(), 1, "{:?}", m.wait_cycles);
        let c = &m.wait_cycles[0];
        assert_eq!(c.waits.len(), 2);
        let threads: Vec<_> = c.waits.iter().map(|w| m.thread_name(w.thread)).collect();
        assert_eq!(threads, ["T2", "T1"], "from the wait that closes it");
        for w in &c.waits {
            assert_eq!(
                (m.lock_name(w.lock), m.lock_name(w.held)),
                ("sem".into(), "sem".into())
            );
        }
        assert!(m.self_deadlocks.is_empty(), "{:?}", m.self_deadlocks);
        // The same cycle again (a second process) counts, as one.
        let m = model_of(&[
            ("a", &format!("{LOCKS}{POOL_CYCLE}")),
            ("b", &format!("{LOCKS}{POOL_CYCLE}")),
        ]);
        assert_eq!(m.wait_cycles.len(), 2, "two traces: two lock instances");
        // Three tasks of a pool of three: one cycle of three.
        let m = with_locks(
            r#"{"e":"lock","l":3,"c":3,"permits":3}
{"e":"acquire","t":1,"l":3,"m":"p"}
{"e":"acquire","t":2,"l":3,"m":"p"}
{"e":"acquire","t":3,"l":3,"m":"p"}
{"e":"request","t":1,"l":3,"m":"p"}
{"e":"request","t":2,"l":3,"m":"p"}
{"e":"request","t":3,"l":3,"m":"p"}
"#,
        );
        assert_eq!(m.wait_cycles.len(), 1);
        assert_eq!(
            m.wait_cycles[0].waits.len(),
            2,
            "the first holder kept: T3, T1"
        );
    }

    /// Three holders of a pool of three; two ask for two more each, then the third gives its
    /// permit back: at the runtime the release came first (its stream reached the file last),
    /// and the two requests wait for each other. Found when the release is read.
    #[test]
    fn a_wait_cycle_whose_free_holder_released_first_is_found_at_the_release() {
        let m = with_locks(
            r#"{"e":"lock","l":3,"c":3,"permits":3}
{"e":"acquire","t":1,"l":3,"m":"p"}
{"e":"acquire","t":2,"l":3,"m":"p"}
{"e":"acquire","t":3,"l":3,"m":"p"}
{"e":"request","t":1,"l":3,"m":"p","n":2}
{"e":"request","t":2,"l":3,"m":"p","n":2}
{"e":"release","t":3,"l":3}
"#,
        );
        assert_eq!(m.wait_cycles.len(), 1, "{:?}", m.wait_cycles);
        assert_eq!(m.wait_cycles[0].waits.len(), 2);
        // The look-alike: the release leaves enough for the first request (two of them).
        let m = with_locks(
            r#"{"e":"lock","l":3,"c":3,"permits":3}
{"e":"acquire","t":1,"l":3,"m":"p"}
{"e":"acquire","t":3,"l":3,"m":"p"}
{"e":"request","t":1,"l":3,"m":"p","n":2}
{"e":"release","t":3,"l":3}
"#,
        );
        assert!(m.wait_cycles.is_empty(), "{:?}", m.wait_cycles);
    }

    #[test]
    fn a_semaphore_wait_with_a_holder_free_to_release_is_no_cycle() {
        // T2 holds the other permit and waits for nothing: it will give it back.
        let m = with_locks(
            r#"{"e":"lock","l":3,"c":3,"permits":2}
{"e":"acquire","t":1,"l":3,"m":"p"}
{"e":"acquire","t":2,"l":3,"m":"p"}
{"e":"request","t":1,"l":3,"m":"p"}
{"e":"release","t":2,"l":3}
{"e":"acquire","t":1,"l":3,"m":"p"}
"#,
        );
        assert!(m.wait_cycles.is_empty(), "{:?}", m.wait_cycles);
        // Both request another, but the pool still had a free permit at the first request
        // (three permits), and the second request is granted at once.
        let m = with_locks(
            r#"{"e":"lock","l":3,"c":3,"permits":3}
{"e":"acquire","t":1,"l":3,"m":"p"}
{"e":"acquire","t":2,"l":3,"m":"p"}
{"e":"request","t":1,"l":3,"m":"p"}
{"e":"acquire","t":1,"l":3,"m":"p"}
{"e":"release","t":1,"l":3}
{"e":"request","t":2,"l":3,"m":"p"}
{"e":"acquire","t":2,"l":3,"m":"p"}
"#,
        );
        assert!(m.wait_cycles.is_empty(), "{:?}", m.wait_cycles);
        // The permits unknown (an old trace that never declared them): nothing is assumed.
        let m = with_locks(
            r#"{"e":"acquire","t":1,"l":3,"m":"p"}
{"e":"acquire","t":2,"l":3,"m":"p"}
{"e":"request","t":1,"l":3,"m":"p"}
{"e":"request","t":2,"l":3,"m":"p"}
"#,
        );
        assert!(m.wait_cycles.is_empty(), "{:?}", m.wait_cycles);
        // One holder waits for a mutex whose holder is free: no cycle.
        let m = with_locks(
            r#"{"e":"lock","l":3,"c":3,"permits":2}
{"e":"acquire","t":3,"l":1,"m":"w"}
{"e":"acquire","t":1,"l":3,"m":"p"}
{"e":"acquire","t":2,"l":3,"m":"p"}
{"e":"request","t":2,"l":1,"m":"w"}
{"e":"request","t":1,"l":3,"m":"p"}
"#,
        );
        assert!(m.wait_cycles.is_empty(), "{:?}", m.wait_cycles);
    }

    #[test]
    fn too_many_waiters_for_the_wait_cycle_check_are_counted_not_checked() {
        let n = MAX_WAIT_CYCLE_WAITERS + 1;
        let mut body = String::from("{\"e\":\"lock\",\"l\":3,\"c\":3,\"permits\":2}\n");
        for t in 1..=n {
            body.push_str(&format!(
                "{{\"e\":\"acquire\",\"t\":{t},\"l\":3,\"m\":\"p\"}}\n"
            ));
        }
        for t in 1..=n {
            body.push_str(&format!(
                "{{\"e\":\"request\",\"t\":{t},\"l\":3,\"m\":\"p\"}}\n"
            ));
        }
        let m = with_locks(&body);
        assert!(m.wait_cycles.is_empty());
        assert_eq!(
            m.anomalies.wait_cycles_unchecked, 1,
            "only the last request finds every holder waiting"
        );
        assert!(m
            .anomalies
            .warnings()
            .iter()
            .any(|w| w.contains("not checked for a wait cycle")));
    }

    #[test]
    fn a_semaphore_wait_cycle_through_a_mutex_is_found() {
        // T2 holds the other permit and waits for the mutex T3 holds, which waits for a permit.
        let m = with_locks(
            r#"{"e":"lock","l":3,"c":3,"permits":2}
{"e":"acquire","t":3,"l":1,"m":"w"}
{"e":"acquire","t":1,"l":3,"m":"p"}
{"e":"acquire","t":2,"l":3,"m":"p"}
{"e":"request","t":2,"l":1,"m":"w"}
{"e":"request","t":1,"l":3,"m":"p"}
{"e":"request","t":3,"l":3,"m":"p"}
"#,
        );
        assert_eq!(m.wait_cycles.len(), 1, "{:?}", m.wait_cycles);
        let locks: Vec<_> = m.wait_cycles[0]
            .waits
            .iter()
            .map(|w| m.lock_name(w.lock))
            .collect();
        // As the runtime follows it: from T3's wait to the first other holder (T1), whose wait
        // goes on to T2, which waits for T3's mutex.
        assert_eq!(locks, ["sem", "sem", "m"]);
    }

    #[test]
    fn locks_of_unknown_kind_are_reentrant() {
        let m = model_of(&[(
            "t",
            r#"{"e":"acquire","t":1,"l":9,"m":"w"}
{"e":"request","t":1,"l":9,"m":"w"}
{"e":"acquire","t":1,"l":9,"m":"w"}
"#,
        )]);
        assert!(m.self_deadlocks.is_empty());
    }

    #[test]
    fn a_trace_without_requests_finds_a_recursive_read_at_the_acquire() {
        let m = with_locks(
            r#"{"e":"acquire","t":1,"l":2,"m":"r"}
{"e":"acquire","t":1,"l":2,"m":"r"}
{"e":"acquire","t":1,"l":2,"m":"rr","how":"try"}
"#,
        );
        assert_eq!(kinds(&m), [("recursive-read", "rw".to_string())]);
    }

    /// The per-lock entry the replay reads ([`LockHot`]) follows the class: a kind learnt after
    /// the lock was declared (a class first seen as `unknown`, then as a semaphore) makes
    /// its permits releasable by another thread, as the class's kind says; and the
    /// zero-duration counts reach the class's histograms at the end.
    #[test]
    fn a_semaphore_kind_learnt_late_reaches_its_locks_and_zero_times_are_counted() {
        let m = model_of(&[(
            "t.json",
            r#"{"e":"class","c":1,"key":"S","kind":"unknown"}
{"e":"lock","l":1,"c":1}
{"e":"class","c":2,"key":"S","kind":"semaphore"}
{"e":"acquire","t":1,"l":1,"m":"p"}
{"e":"release","t":2,"l":1}
{"e":"acquire","t":1,"l":1,"m":"p","wait_ns":5}
{"e":"release","t":1,"l":1,"hold_ns":7}
"#,
        )]);
        assert_eq!(m.classes[0].kind, LockKind::Semaphore);
        assert_eq!(m.anomalies.release_by_other_thread, 0, "{:?}", m.anomalies);
        let (wait, hold) = (&m.classes[0].wait, &m.classes[0].hold);
        assert_eq!((wait.count(), wait.max(), wait.quantile(0.5)), (2, 5, 0));
        assert_eq!((hold.count(), hold.max(), hold.quantile(0.5)), (2, 7, 0));
    }

    #[test]
    fn a_condvar_wait_followed_by_its_release_is_one_release() {
        let m = with_locks(
            r#"{"e":"acquire","t":1,"l":1,"m":"w"}
{"e":"cond_wait","t":1,"cv":9,"l":1}
{"e":"release","t":1,"l":1}
{"e":"acquire","t":2,"l":1,"m":"w"}
{"e":"release","t":2,"l":1}
{"e":"acquire","t":1,"l":1,"m":"w"}
{"e":"release","t":1,"l":1}
{"e":"release","t":1,"l":1}
"#,
        );
        // Only the last release, of a lock no longer held, is an anomaly.
        assert_eq!(m.anomalies.release_not_held, 1, "{:?}", m.anomalies);
        assert_eq!(m.anomalies.release_by_other_thread, 0);
    }

    #[test]
    fn a_granted_request_is_one_dependency_and_a_failed_one_none() {
        let m = with_locks(
            r#"{"e":"acquire","t":1,"l":4,"m":"w"}
{"e":"request","t":1,"l":5,"m":"w"}
{"e":"acquire","t":1,"l":5,"m":"w"}
{"e":"release","t":1,"l":5}
{"e":"request","t":1,"l":1,"m":"w"}
{"e":"fail","t":1,"l":1,"m":"w","how":"timed"}
"#,
        );
        assert_eq!(m.deps.len(), 1, "{:?}", m.deps);
        assert_eq!(m.deps[0].count, 1);
        assert!(!m.deps[0].pending);
    }

    #[test]
    fn a_stopped_request_is_a_dependency_with_the_held_set_of_its_time() {
        // The runtime panicked at the request: the unwinding releases `a`, and the thread goes
        // on to other locks.
        let m = with_locks(
            r#"{"e":"acquire","t":1,"l":4,"m":"w"}
{"e":"request","t":1,"l":5,"m":"w"}
{"e":"release","t":1,"l":4}
{"e":"acquire","t":1,"l":1,"m":"w"}
{"e":"acquire","t":1,"l":2,"m":"w"}
"#,
        );
        let stopped: Vec<_> = m.deps.iter().filter(|d| d.pending).collect();
        assert_eq!(stopped.len(), 1, "{:?}", m.deps);
        assert_eq!(stopped[0].lock, 4);
        assert_eq!(
            m.held(stopped[0].held).collect::<Vec<_>>(),
            [(3, Mode::Exclusive)]
        );
    }

    /// Rounds of spawn and join by thread 1, which nests `a -> b` in every round; in round
    /// `concurrent` (if any) the child takes `b -> a` while thread 1 is in its round, else each
    /// child takes `b -> a` and is joined before thread 1 nests.
    fn rounds(n: u64, concurrent: Option<u64>) -> String {
        let mut s = String::from(LOCKS);
        for i in 0..n {
            let c = 100 + i;
            s += &format!("{{\"e\":\"fork\",\"t\":1,\"child\":{c}}}\n");
            let child = format!(
                "{{\"e\":\"acquire\",\"t\":{c},\"l\":5,\"m\":\"w\"}}\n\
                 {{\"e\":\"acquire\",\"t\":{c},\"l\":4,\"m\":\"w\"}}\n\
                 {{\"e\":\"release\",\"t\":{c},\"l\":4}}\n\
                 {{\"e\":\"release\",\"t\":{c},\"l\":5}}\n"
            );
            let parent = "{\"e\":\"acquire\",\"t\":1,\"l\":4,\"m\":\"w\"}\n\
                 {\"e\":\"acquire\",\"t\":1,\"l\":5,\"m\":\"w\"}\n\
                 {\"e\":\"release\",\"t\":1,\"l\":5}\n\
                 {\"e\":\"release\",\"t\":1,\"l\":4}\n";
            let join = format!("{{\"e\":\"join\",\"t\":1,\"child\":{c}}}\n");
            if concurrent == Some(i) {
                s += &child;
                s += parent;
                s += &join;
            } else {
                s += &child;
                s += &join;
                s += parent;
            }
        }
        s
    }

    fn inversions(text: &str) -> (usize, Vec<String>) {
        let m = model_of(&[("t", text)]);
        let r = crate::analyze_model(&m, &crate::Options::default());
        let n = r
            .violations
            .iter()
            .filter(|v| v.kind == "lock-order-inversion")
            .count();
        (n, r.warnings)
    }

    #[test]
    fn a_concurrent_round_among_many_fork_join_rounds_is_reported() {
        // Failed with 4 clocks per dependency: the middle round's clock was overwritten.
        let (n, w) = inversions(&rounds(12, Some(6)));
        assert!(n >= 1, "{w:?}");
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn fork_join_ordered_rounds_are_silent() {
        let (n, w) = inversions(&rounds(12, None));
        assert_eq!(n, 0, "{w:?}");
    }

    #[test]
    fn beyond_the_clock_bound_ordering_is_dropped_loudly_never_a_miss() {
        let rounds_n = MAX_CLOCKS_PER_DEP as u64 + 20;
        let (n, w) = inversions(&rounds(rounds_n, Some(rounds_n - 5)));
        assert!(n >= 1, "{w:?}");
        assert!(w.iter().any(|w| w.contains("without ordering")), "{w:?}");
        // The look-alike becomes a (reported) false alarm rather than a silent approximation.
        let (_, w) = inversions(&rounds(rounds_n, None));
        assert!(w.iter().any(|w| w.contains("without ordering")), "{w:?}");
    }

    fn nested(t: u64, locks: impl IntoIterator<Item = u64>) -> String {
        locks
            .into_iter()
            .map(|l| format!("{{\"e\":\"acquire\",\"t\":{t},\"l\":{l},\"m\":\"w\"}}\n"))
            .collect()
    }

    /// Failed with the former cap of 64 held locks: the oldest was forgotten, and with it the
    /// edge of the inversion.
    #[test]
    fn a_held_set_deeper_than_any_real_program_is_kept_exactly_and_warned() {
        let depth = DEEP_HELD as u64 + 44;
        let mut s = nested(1, 1..=depth);
        s += &nested(2, [depth, 1]);
        let m = model_of(&[("t", &s)]);
        assert_eq!(m.anomalies.deep_held, 44);
        let r = crate::analyze_model(&m, &crate::Options::default());
        let inversions: Vec<_> = r
            .violations
            .iter()
            .filter(|v| v.kind == "lock-order-inversion")
            .collect();
        assert_eq!(inversions.len(), 1, "{:?}", r.warnings);
        assert!(r.summary.complete, "{:?}", r.warnings);
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("beyond any real program")),
            "{:?}",
            r.warnings
        );
        // The look-alike: the same nesting in one order only is silent.
        let mut s = nested(1, 1..=depth);
        s += &nested(2, [1, depth]);
        let m = model_of(&[("t", &s)]);
        let r = crate::analyze_model(&m, &crate::Options::default());
        assert!(r.violations.is_empty(), "{:?}", r.violations);
    }

    /// Held sets that grow without bound: one node per acquisition, and the dependencies'
    /// held-lock entries (quadratic here) stop at the budget, loudly.
    #[test]
    fn a_held_set_without_bound_costs_one_node_per_acquisition_and_stops_at_the_budget() {
        let n = 20_000u64;
        let m = model_of(&[("t", &nested(1, 1..=n))]);
        assert!(m.held_sets.len() as u64 <= n + 2, "{}", m.held_sets.len());
        assert_eq!(m.clocks.len(), 2, "the empty clock and thread 1's");
        assert_eq!(m.anomalies.deep_held, n - DEEP_HELD as u64);
        let recorded = m.deps.len() as u64;
        let entries: u64 = (1..=recorded).sum();
        assert!(entries <= MAX_HELD_ENTRIES as u64, "{entries}");
        assert!(
            entries + recorded + 1 > MAX_HELD_ENTRIES as u64,
            "{entries}"
        );
        assert_eq!(m.anomalies.over_budget, n - 1 - recorded);
        let w = m.anomalies.warnings();
        assert!(w.iter().any(|w| w.contains("budget")), "{w:?}");
        let last = m.dep(recorded as u32 - 1);
        assert_eq!(last.held().len() as u64, recorded);
        assert_eq!(last.held().next(), Some((0, Mode::Exclusive)));
    }

    /// The model of `s` (JSON Lines) with a node budget of `budget` as its base.
    fn with_node_budget(s: &str, budget: usize) -> Model {
        let mut b = ModelBuilder::new();
        b.node_budget = NodeBudget(budget);
        b.begin_trace("t");
        for e in crate::model::tests::events(s) {
            b.event(&e);
        }
        b.finish()
    }

    /// Many distinct held sets made as a real program makes them, one node per acquisition (a
    /// lock held while each of hundreds of others is taken under it, then the same under a
    /// second lock): the budget grows with the acquisitions, so even a base far below the
    /// trace's nodes is never reached (a fixed budget of 2.1M nodes cut the planted trace's
    /// 20M-event form).
    #[test]
    fn held_sets_made_as_a_real_program_makes_them_never_reach_the_node_budget() {
        let n = 600u64;
        let mut s = String::new();
        for outer in [1u64, 2] {
            for l in 10..10 + n {
                s += &nested(1, [outer, l, l + 1000]);
                for r in [l + 1000, l, outer] {
                    s += &format!("{{\"e\":\"release\",\"t\":1,\"l\":{r}}}\n");
                }
            }
        }
        s += &nested(2, [1011, 2]);
        let full = with_node_budget(&s, MAX_HELD_NODES);
        assert!(
            full.held_sets.len() > 2 * 2 * n as usize,
            "{}",
            full.held_sets.len()
        );
        let m = with_node_budget(&s, 100);
        assert_eq!(m.anomalies.over_node_budget, 0);
        assert_eq!(m.deps.len(), full.deps.len());
        assert_eq!(m.held_sets.len(), full.held_sets.len());
    }

    /// A hostile trace that makes many nodes per acquisition (a deep stack whose bottom hold is
    /// released and taken again at the top, over and over: each time every hold above it is
    /// interned anew): past the node budget (its base set small here) the tries stop growing
    /// and the dependencies that would need a new node are counted and warned about, the
    /// analysis incomplete; below it, the model is the unbounded one.
    #[test]
    fn distinct_held_sets_past_the_node_budget_stop_the_tries_and_are_reported() {
        let (depth, rounds) = (60u64, 200u64);
        let mut s = nested(1, 1..=depth);
        for r in 0..rounds {
            let bottom = 1 + r % depth;
            s += &format!("{{\"e\":\"release\",\"t\":1,\"l\":{bottom}}}\n");
            s += &nested(1, [bottom]);
        }
        s += &nested(2, [depth, 1]);
        let acquisitions = (depth + rounds + 2) as usize;
        let full = with_node_budget(&s, MAX_HELD_NODES);
        assert_eq!(full.anomalies.over_node_budget, 0);
        let budget = 1000;
        let limit = budget + HELD_NODES_PER_ACQUISITION * acquisitions;
        assert!(full.held_sets.len() > 2 * limit, "{}", full.held_sets.len());
        let m = with_node_budget(&s, budget);
        assert!(
            m.held_sets.len() <= limit,
            "{} > {limit}",
            m.held_sets.len()
        );
        assert!(m.held_sites.len() <= limit, "{}", m.held_sites.len());
        assert!(m.deps.len() < full.deps.len());
        assert!(m.anomalies.over_node_budget > 0);
        assert_eq!(
            m.anomalies.over_budget, 0,
            "the entries' budget is not the one hit"
        );
        let w = m.anomalies.warnings();
        assert!(
            w.iter().any(|w| w.contains("distinct held sets")
                && w.contains("budget of 2097152 plus 2 per acquisition")),
            "{w:?}"
        );
        let r = crate::analyze_model(&m, &crate::Options::default());
        assert!(!r.summary.complete, "{:?}", r.warnings);
        // Within the budget nothing changes: the same dependencies as without one.
        let within = with_node_budget(&s, full.held_sets.len().max(full.held_sites.len()));
        assert_eq!(within.anomalies.over_node_budget, 0);
        assert_eq!(within.deps.len(), full.deps.len());
        let r = crate::analyze_model(&full, &crate::Options::default());
        assert!(r.summary.complete, "{:?}", r.warnings);
    }

    /// A hostile trace releasing from the bottom of a deep stack: interning the held set again
    /// after each release would cost a node per hold above it, quadratic in the depth.
    #[test]
    fn releases_below_the_top_cost_no_nodes_until_the_next_acquisition() {
        let n = 3000u64;
        let mut s = nested(1, 1..=n);
        for l in 1..n {
            s += &format!("{{\"e\":\"release\",\"t\":1,\"l\":{l}}}\n");
        }
        s += &nested(1, [n + 1]);
        let m = model_of(&[("t", &s)]);
        assert!(m.held_sets.len() as u64 <= n + 4, "{}", m.held_sets.len());
        let last = m.dep(m.deps.len() as u32 - 1);
        assert_eq!(
            last.held().collect::<Vec<_>>(),
            [((n - 1) as u32, Mode::Exclusive)]
        );
        assert_eq!(last.rec().lock, n as u32);
        assert_eq!(m.anomalies.release_not_held, 0);
    }

    #[test]
    fn held_sets_are_shared_and_follow_releases_and_conversions() {
        let m = with_locks(
            r#"{"e":"acquire","t":1,"l":4,"m":"w"}
{"e":"acquire","t":1,"l":5,"m":"w"}
{"e":"release","t":1,"l":5}
{"e":"release","t":1,"l":4}
{"e":"acquire","t":2,"l":4,"m":"w"}
{"e":"acquire","t":2,"l":5,"m":"w"}
{"e":"acquire","t":2,"l":2,"m":"r"}
{"e":"acquire","t":2,"l":1,"m":"w"}
{"e":"release","t":2,"l":5}
{"e":"convert","t":2,"l":2,"m":"w"}
{"e":"acquire","t":2,"l":3,"m":"p"}
"#,
        );
        let held = |i: u32| m.dep(i).held().collect::<Vec<_>>();
        // Thread 1's and thread 2's `a -> b` are two dependencies with equal held sets.
        assert_eq!(held(0), held(1));
        assert_ne!(m.deps[0].thread, m.deps[1].thread);
        use Mode::*;
        let last = m.deps.len() as u32 - 1;
        // The release of `b` below the top, then the upgrade of `rw`: held {a, rw (w)}.
        assert_eq!(held(last), [(3, Exclusive), (1, Exclusive), (0, Exclusive)]);
        assert_eq!(m.dep(last).rec().lock, 2);
        let upgrade = m
            .deps
            .iter()
            .position(|d| d.lock == 1 && d.mode == Exclusive);
        let upgrade = upgrade.expect("the upgrade is a dependency") as u32;
        assert_eq!(held(upgrade), [(3, Exclusive), (1, Shared), (0, Exclusive)]);
        assert_eq!(
            m.held_sites_of(m.deps[last as usize].first_sites.held),
            [None, None, None]
        );
    }

    #[test]
    fn dropped_site_combinations_are_counted_and_warned() {
        let mut s = String::from(LOCKS);
        for i in 0..(MAX_SITES_PER_DEP as u32 + 3) {
            s += &format!(
                "{{\"e\":\"site\",\"s\":{i},\"loc\":\"x.rs:{i}:1\"}}\n\
                 {{\"e\":\"acquire\",\"t\":1,\"l\":4,\"m\":\"w\",\"s\":{i}}}\n\
                 {{\"e\":\"acquire\",\"t\":1,\"l\":5,\"m\":\"w\"}}\n\
                 {{\"e\":\"release\",\"t\":1,\"l\":5}}\n\
                 {{\"e\":\"release\",\"t\":1,\"l\":4}}\n"
            );
        }
        let m = model_of(&[("t", &s)]);
        assert_eq!(m.deps.len(), 1);
        assert_eq!(m.site_combinations(&m.deps[0]), MAX_SITES_PER_DEP);
        assert_eq!(m.sites_of(&m.deps[0]).count(), MAX_SITES_PER_DEP);
        assert_eq!(m.sites_dropped(&m.deps[0]), 3);
        let w = m.approximations.warnings();
        assert!(w.len() == 1 && w[0].contains("site combinations"), "{w:?}");
    }
}
