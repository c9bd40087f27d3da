//! Vector clocks over fork and join that share their structure, so that a long chain of forks
//! (each thread starts the next) costs memory and time linear in its length.
//!
//! A [`lockcheck_core::deps::VectorClock`] is a sorted list of every thread its owner knows of:
//! in a chain of `n` forks the `i`-th thread knows its `i` ancestors, and keeping every thread's
//! clock (and the clocks of the dependencies) is quadratic in `n`. Here a clock with more than
//! [`FLAT_MAX`] entries is a persistent 4-ary trie keyed by thread id, its nodes shared between
//! clocks and reference-counted in one [`ClockArena`]: a fork copies one path of the parent's
//! trie instead of the whole list, a join of two clocks that share subtrees visits only where
//! they differ, and a tick of a clock that nothing else shares changes it in place. Small clocks
//! (most programs) stay flat sorted lists, as compact as before.
//!
//! The answers are exactly those of `VectorClock` (`get`, `tick`, `join`, equality): the tests
//! replay random fork/join traces through both. Written here because no crate offers a
//! persistent, reference-counted integer map with a structural-sharing join and a cheap
//! content hash in an arena of 32-bit indices (the model keeps millions of clocks).

/// Clocks with at most this many entries are flat sorted lists; beyond, tries. The form is a
/// function of the content (entries only ever appear, never vanish), so equal clocks have equal
/// forms.
pub const FLAT_MAX: usize = 16;

/// Bits of a thread id per trie level (4 children per node).
const BITS: u32 = 2;
/// Children per node.
const FAN: usize = 1 << BITS;

/// One vector clock: its entries, or the root of its trie in a [`ClockArena`].
///
/// A trie clock holds one reference to its root: copy it with [`ClockArena::clone_clock`] and
/// give it back with [`ClockArena::release`] (a clock dropped without that only wastes arena
/// space, it never changes another clock).
#[derive(Debug)]
pub enum Clock {
    /// At most [`FLAT_MAX`] `(thread, epoch)` entries, sorted by thread, every epoch positive.
    Flat(Box<[(u32, u32)]>),
    /// More entries: a trie of `height` levels (capacity `4^height` threads, the smallest that
    /// holds the largest thread id present) whose root is node `root` of the arena.
    Tree {
        /// Levels of the trie; level 0 nodes hold epochs, the others child nodes.
        height: u8,
        /// The root node.
        root: u32,
    },
}

impl Clock {
    /// The clock of a new thread: it knows itself at epoch 1.
    pub fn new_thread(thread: u32) -> Clock {
        Clock::Flat(Box::new([(thread, 1)]))
    }

    /// The clock that knows nothing.
    pub fn empty() -> Clock {
        Clock::Flat(Box::new([]))
    }

    /// A bitwise copy: valid only where the arena is copied along (see [`Clocks`]'s `Clone`).
    fn shallow(&self) -> Clock {
        match self {
            Clock::Flat(v) => Clock::Flat(v.clone()),
            &Clock::Tree { height, root } => Clock::Tree { height, root },
        }
    }
}

/// The shared nodes of the trie clocks.
///
/// Node 0 is the empty subtree at every level (all epochs 0), never counted nor freed. A node at
/// level 0 holds the epochs of 4 consecutive threads; above, the indices of 4 child nodes.
/// Every node other than 0 has a positive entry below it.
#[derive(Debug, Clone)]
pub struct ClockArena {
    kids: Vec<[u32; FAN]>,
    /// References to each node (from parents and from clocks).
    rc: Vec<u32>,
    /// A hash of each node's content (0 for node 0), equal for equal content at equal levels.
    hash: Vec<u64>,
    /// Freed nodes, reused first.
    free: Vec<u32>,
}

impl Default for ClockArena {
    fn default() -> Self {
        ClockArena::new()
    }
}

/// A 64-bit mixer (splitmix64's finalizer).
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The smallest height whose trie holds thread `t`.
fn height_for(t: u32) -> u8 {
    let bits = 32 - t.leading_zeros();
    bits.div_ceil(BITS).max(1) as u8
}

/// The child of a level-`level` node that leads to thread `t`.
#[inline]
fn digit(t: u32, level: u32) -> usize {
    ((t >> (BITS * level)) as usize) & (FAN - 1)
}

impl ClockArena {
    /// An arena with only the empty node.
    pub fn new() -> Self {
        ClockArena {
            kids: vec![[0; FAN]],
            rc: vec![0],
            hash: vec![0],
            free: Vec::new(),
        }
    }

    /// Nodes allocated (live or free), for memory accounting.
    pub fn nodes(&self) -> usize {
        self.kids.len()
    }

    /// The epoch of `thread` known to `c` (0: none).
    pub fn get(&self, c: &Clock, thread: u64) -> u32 {
        let Ok(t) = u32::try_from(thread) else {
            return 0;
        };
        match c {
            Clock::Flat(v) => match v.binary_search_by_key(&t, |e| e.0) {
                Ok(i) => v[i].1,
                Err(_) => 0,
            },
            &Clock::Tree { height, root } => {
                if height_for(t) > height {
                    return 0;
                }
                let mut n = root;
                for level in (1..u32::from(height)).rev() {
                    n = self.kids[n as usize][digit(t, level)];
                    if n == 0 {
                        return 0;
                    }
                }
                self.kids[n as usize][digit(t, 0)]
            }
        }
    }

    /// The epochs of threads `0..out.len()` known to `c`, into `out` (0: none): what
    /// [`ClockArena::get`] answers for each, in one pass over the clock's entries (a trie is
    /// walked once, not once per thread).
    pub fn row(&self, c: &Clock, out: &mut [u32]) {
        out.fill(0);
        match c {
            Clock::Flat(v) => {
                for &(t, e) in v.iter() {
                    if let Some(slot) = out.get_mut(t as usize) {
                        *slot = e;
                    }
                }
            }
            &Clock::Tree { height, root } => self.row_of(root, u32::from(height) - 1, 0, out),
        }
    }

    /// [`ClockArena::row`] below node `n` of level `level`, whose first thread is `base`.
    fn row_of(&self, n: u32, level: u32, base: usize, out: &mut [u32]) {
        if n == 0 || base >= out.len() {
            return;
        }
        let kids = &self.kids[n as usize];
        if level == 0 {
            for (i, &e) in kids.iter().enumerate() {
                if let Some(slot) = out.get_mut(base + i) {
                    *slot = e;
                }
            }
            return;
        }
        let span = 1usize << (BITS * level);
        for (i, &k) in kids.iter().enumerate() {
            self.row_of(k, level - 1, base + i * span, out);
        }
    }

    /// Calls `f(thread)` for every thread `c` knows (a positive epoch), skipping the trie nodes
    /// marked in `seen` (indexed by node, as long as [`ClockArena::nodes`]) and marking those it
    /// visits: over many clocks, each shared node is walked once. Correct because a node is
    /// shared only at its own place (a fork or join copies paths; nothing merges equal nodes
    /// found elsewhere), so the threads below it are the same for every clock that has it.
    pub fn each_known(&self, c: &Clock, seen: &mut [bool], f: &mut impl FnMut(u32)) {
        match c {
            Clock::Flat(v) => v.iter().filter(|e| e.1 > 0).for_each(|e| f(e.0)),
            &Clock::Tree { height, root } => {
                let mut stack = vec![(root, u32::from(height) - 1, 0u64)];
                while let Some((n, level, base)) = stack.pop() {
                    if n == 0 || std::mem::replace(&mut seen[n as usize], true) {
                        continue;
                    }
                    let kids = &self.kids[n as usize];
                    if level == 0 {
                        for (i, &e) in kids.iter().enumerate() {
                            if let (true, Ok(t)) = (e > 0, u32::try_from(base + i as u64)) {
                                f(t);
                            }
                        }
                    } else {
                        let span = 1u64 << (BITS * level);
                        for (i, &k) in kids.iter().enumerate() {
                            stack.push((k, level - 1, base + i as u64 * span));
                        }
                    }
                }
            }
        }
    }

    /// Advances `thread`'s epoch in `c` by one (saturating, as `VectorClock::tick`).
    pub fn tick(&mut self, c: &mut Clock, thread: u32) {
        let e = self.get(c, u64::from(thread)).saturating_add(1);
        self.raise(c, thread, e);
    }

    /// Pointwise maximum of `c` with `other` (what a join learns).
    pub fn join(&mut self, c: &mut Clock, other: &Clock) {
        match (&mut *c, other) {
            (_, Clock::Flat(ov)) => {
                for &(t, e) in ov.iter() {
                    if e > self.get(c, u64::from(t)) {
                        self.raise(c, t, e);
                    }
                }
            }
            (Clock::Flat(cv), Clock::Tree { .. }) => {
                let mine = std::mem::take(cv);
                let mut r = self.clone_clock(other);
                for &(t, e) in mine.iter() {
                    if e > self.get(&r, u64::from(t)) {
                        self.raise(&mut r, t, e);
                    }
                }
                *c = r;
            }
            (
                Clock::Tree { height, root },
                &Clock::Tree {
                    height: hb,
                    root: rb,
                },
            ) => {
                let h = (*height).max(hb);
                let ra = self.lift(*root, *height, h);
                let lifted = hb < h;
                let rb = if lifted {
                    self.inc(rb);
                    self.lift(rb, hb, h)
                } else {
                    rb
                };
                *root = self.join_nodes(ra, rb, u32::from(h) - 1);
                *height = h;
                if lifted {
                    self.release_node(rb, u32::from(h) - 1);
                }
            }
        }
    }

    /// Another reference to the same clock.
    pub fn clone_clock(&mut self, c: &Clock) -> Clock {
        if let &Clock::Tree { root, .. } = c {
            self.inc(root);
        }
        c.shallow()
    }

    /// Gives back a clock's reference to its nodes.
    pub fn release(&mut self, c: Clock) {
        if let Clock::Tree { height, root } = c {
            self.release_node(root, u32::from(height) - 1);
        }
    }

    /// Whether two clocks have the same entries.
    pub fn eq(&self, a: &Clock, b: &Clock) -> bool {
        match (a, b) {
            (Clock::Flat(x), Clock::Flat(y)) => x == y,
            (
                &Clock::Tree { height, root },
                &Clock::Tree {
                    height: hb,
                    root: rb,
                },
            ) => height == hb && self.nodes_eq(root, rb, u32::from(height) - 1),
            _ => false,
        }
    }

    /// A hash of a clock's entries: equal clocks ([`ClockArena::eq`]) hash alike.
    pub fn hash(&self, c: &Clock) -> u64 {
        match c {
            Clock::Flat(v) => v.iter().fold(0x5bd1_e995, |h, &(t, e)| {
                mix(h ^ (u64::from(t) << 32 | u64::from(e)))
            }),
            &Clock::Tree { height, root } => mix(self.hash[root as usize] ^ u64::from(height)),
        }
    }

    /// Sets `thread`'s epoch in `c` to `e`, which is larger than the one it has.
    fn raise(&mut self, c: &mut Clock, thread: u32, e: u32) {
        match c {
            Clock::Flat(v) => match v.binary_search_by_key(&thread, |x| x.0) {
                Ok(i) => v[i].1 = e,
                Err(i) => {
                    let mut entries = Vec::with_capacity(v.len() + 1);
                    entries.extend_from_slice(&v[..i]);
                    entries.push((thread, e));
                    entries.extend_from_slice(&v[i..]);
                    *c = if entries.len() <= FLAT_MAX {
                        Clock::Flat(entries.into_boxed_slice())
                    } else {
                        self.build(&entries)
                    };
                }
            },
            Clock::Tree { height, root } => {
                let h = (*height).max(height_for(thread));
                let r = self.lift(*root, *height, h);
                *root = self.set_node(r, u32::from(h) - 1, thread, e);
                *height = h;
            }
        }
    }

    /// The trie of sorted `entries` (more than [`FLAT_MAX`]).
    fn build(&mut self, entries: &[(u32, u32)]) -> Clock {
        let height = height_for(entries.last().map_or(0, |e| e.0));
        let mut root = 0;
        for &(t, e) in entries {
            root = self.set_node(root, u32::from(height) - 1, t, e);
        }
        Clock::Tree { height, root }
    }

    fn inc(&mut self, n: u32) {
        if n != 0 {
            self.rc[n as usize] += 1;
        }
    }

    fn alloc(&mut self, kids: [u32; FAN]) -> u32 {
        match self.free.pop() {
            Some(n) => {
                self.kids[n as usize] = kids;
                self.rc[n as usize] = 1;
                n
            }
            None => {
                self.kids.push(kids);
                self.rc.push(1);
                self.hash.push(0);
                (self.kids.len() - 1) as u32
            }
        }
    }

    /// Drops one reference to node `n` of level `level`, freeing what nothing else holds.
    fn release_node(&mut self, n: u32, level: u32) {
        if n == 0 {
            return;
        }
        let rc = &mut self.rc[n as usize];
        *rc -= 1;
        if *rc == 0 {
            if level > 0 {
                for k in self.kids[n as usize] {
                    self.release_node(k, level - 1);
                }
            }
            self.free.push(n);
        }
    }

    /// Takes one reference to `n` and gives back a node with its content that only the caller
    /// holds: `n` itself when nothing else does, else a copy.
    fn writable(&mut self, n: u32, level: u32) -> u32 {
        if n == 0 {
            return self.alloc([0; FAN]);
        }
        if self.rc[n as usize] == 1 {
            return n;
        }
        self.rc[n as usize] -= 1;
        let kids = self.kids[n as usize];
        if level > 0 {
            for k in kids {
                self.inc(k);
            }
        }
        let w = self.alloc(kids);
        self.hash[w as usize] = self.hash[n as usize];
        w
    }

    /// Recomputes the hash of a leaf from its epochs.
    fn rehash(&mut self, n: u32) {
        let h = self.kids[n as usize]
            .iter()
            .fold(0x2545_f491_4f6c_dd1d, |h, &e| mix(h ^ u64::from(e)));
        self.hash[n as usize] = h;
    }

    /// Recomputes the hash of an inner node from its children's hashes.
    fn rehash_inner(&mut self, n: u32) {
        let kids = self.kids[n as usize];
        let h = kids.iter().fold(
            0x6a09_e667_f3bc_c909,
            |h, &k| mix(h ^ self.hash[k as usize]),
        );
        self.hash[n as usize] = h;
    }

    /// Takes one reference to the level-`level` node `n` and gives back one to the node with
    /// `t`'s epoch set to `e`.
    fn set_node(&mut self, n: u32, level: u32, t: u32, e: u32) -> u32 {
        let w = self.writable(n, level);
        let d = digit(t, level);
        if level == 0 {
            self.kids[w as usize][d] = e;
            self.rehash(w);
        } else {
            let k = self.kids[w as usize][d];
            let k = self.set_node(k, level - 1, t, e);
            self.kids[w as usize][d] = k;
            self.rehash_inner(w);
        }
        w
    }

    /// Takes the reference to a root of height `from` and gives back one to the same content
    /// as a root of height `to`.
    fn lift(&mut self, mut root: u32, from: u8, to: u8) -> u32 {
        for _ in from..to {
            if root != 0 {
                root = self.alloc([root, 0, 0, 0]);
                self.rehash_inner(root);
            }
        }
        root
    }

    /// Whether every epoch under `a` is at least the one under `b` (both of level `level`).
    fn dominates(&self, a: u32, b: u32, level: u32) -> bool {
        if b == 0 || a == b {
            return true;
        }
        if a == 0 {
            return false;
        }
        let (ka, kb) = (self.kids[a as usize], self.kids[b as usize]);
        if level == 0 {
            ka.iter().zip(&kb).all(|(x, y)| x >= y)
        } else {
            ka.iter()
                .zip(&kb)
                .all(|(&x, &y)| self.dominates(x, y, level - 1))
        }
    }

    /// Takes one reference to `a` and gives back one to the pointwise maximum of `a` and `b`
    /// (both of level `level`), sharing what does not change.
    fn join_nodes(&mut self, a: u32, b: u32, level: u32) -> u32 {
        if self.dominates(a, b, level) {
            return a;
        }
        if a == 0 {
            self.inc(b);
            return b;
        }
        let w = self.writable(a, level);
        let kb = self.kids[b as usize];
        if level == 0 {
            for (x, y) in self.kids[w as usize].iter_mut().zip(kb) {
                *x = (*x).max(y);
            }
            self.rehash(w);
        } else {
            for (i, y) in kb.into_iter().enumerate() {
                let x = self.kids[w as usize][i];
                let x = self.join_nodes(x, y, level - 1);
                self.kids[w as usize][i] = x;
            }
            self.rehash_inner(w);
        }
        w
    }

    /// Whether the level-`level` nodes `a` and `b` hold the same epochs.
    fn nodes_eq(&self, a: u32, b: u32, level: u32) -> bool {
        if a == b {
            return true;
        }
        if a == 0 || b == 0 || self.hash[a as usize] != self.hash[b as usize] {
            return false;
        }
        let (ka, kb) = (self.kids[a as usize], self.kids[b as usize]);
        if level == 0 {
            ka == kb
        } else {
            ka.iter()
                .zip(&kb)
                .all(|(&x, &y)| self.nodes_eq(x, y, level - 1))
        }
    }
}

/// The distinct clocks of a model's dependencies, by id; id 0 is the clock that knows nothing.
#[derive(Debug)]
pub struct Clocks {
    arena: ClockArena,
    list: Vec<Clock>,
}

impl Default for Clocks {
    fn default() -> Self {
        Clocks {
            arena: ClockArena::new(),
            list: vec![Clock::empty()],
        }
    }
}

impl Clone for Clocks {
    fn clone(&self) -> Self {
        // The copied list refers to the copied arena, whose counts already include it.
        Clocks {
            arena: self.arena.clone(),
            list: self.list.iter().map(Clock::shallow).collect(),
        }
    }
}

impl Clocks {
    /// How many distinct clocks there are (the empty one included).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Never: the empty clock is always there.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The epoch of `thread` known to clock `id` (0: none).
    pub fn get(&self, id: u32, thread: u64) -> u32 {
        self.arena.get(&self.list[id as usize], thread)
    }

    /// Per thread, whether one of the clocks `ids` knows it together with another thread of
    /// `relevant` (by thread; a thread out of its range is not): a relevant thread no such
    /// clock knows is ordered by none of them with another relevant thread. Exact for flat
    /// clocks; a trie clock (more than [`FLAT_MAX`] threads) marks every relevant thread it
    /// knows, more than asked only where it knows one alone. Time linear in the flat clocks'
    /// entries and the trie nodes (each walked once, [`ClockArena::each_known`]).
    pub fn known_together(&self, ids: impl Iterator<Item = u32>, relevant: &[bool]) -> Vec<bool> {
        let is = |t: u32| relevant.get(t as usize).copied().unwrap_or(false);
        let mut known = vec![false; relevant.len()];
        let mut seen = vec![false; self.arena.nodes()];
        for id in ids {
            let c = &self.list[id as usize];
            if let Clock::Flat(v) = c {
                if v.iter().filter(|e| e.1 > 0 && is(e.0)).count() < 2 {
                    continue;
                }
            }
            self.arena.each_known(c, &mut seen, &mut |t| {
                if is(t) {
                    known[t as usize] = true;
                }
            });
        }
        known
    }

    /// The epochs of threads `0..out.len()` known to clock `id`, into `out`
    /// ([`ClockArena::row`]).
    pub fn row(&self, id: u32, out: &mut [u32]) {
        self.arena.row(&self.list[id as usize], out)
    }

    /// Clock `id`.
    pub fn clock(&self, id: u32) -> &Clock {
        &self.list[id as usize]
    }

    /// The arena of the clocks' nodes, where the clocks of a replay's threads live too.
    pub fn arena(&mut self) -> &mut ClockArena {
        &mut self.arena
    }

    /// Whether clock `id` has the entries of `c` (a clock of this arena).
    pub fn is(&self, id: u32, c: &Clock) -> bool {
        self.arena.eq(&self.list[id as usize], c)
    }

    /// Adds a copy of `c` (a clock of this arena) as the next id, which it returns.
    pub fn push(&mut self, c: &Clock) -> u32 {
        let c = self.arena.clone_clock(c);
        self.list.push(c);
        (self.list.len() - 1) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockcheck_core::deps::VectorClock;

    /// xorshift64*: a seeded stream, so a failure replays.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        }
    }

    /// [`Clocks::known_together`] marks the relevant threads of the flat clocks that know two
    /// relevant threads or more, and every relevant thread of the trie clocks (their shared
    /// nodes walked once): random joins between threads, some joining many (tries), most
    /// never (threads alone), the clocks kept at random points, a random half of the threads
    /// relevant and of the clocks asked about.
    #[test]
    fn the_threads_known_together_are_those_of_the_clocks_of_several_relevant_threads() {
        let (mut tries, mut alone, mut pairs) = (0, 0, 0);
        for seed in 1..=40u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let threads = 2 + rng.below(120) as u32;
            let mut clocks = Clocks::default();
            let mut ours: Vec<Clock> = (0..threads).map(Clock::new_thread).collect();
            // A few threads join many others; the rest join rarely.
            let busy = 1 + rng.below(3) as u32;
            for _ in 0..rng.below(600) {
                let p = rng.below(u64::from(threads)) as u32;
                let c = rng.below(u64::from(threads)) as u32;
                if p != c && (p < busy || rng.below(20) == 0) {
                    let cc = clocks.arena().clone_clock(&ours[c as usize]);
                    clocks.arena().join(&mut ours[p as usize], &cc);
                    clocks.arena().release(cc);
                    clocks.arena().tick(&mut ours[c as usize], c);
                }
                if rng.below(3) == 0 {
                    clocks.push(&ours[p as usize]);
                }
            }
            for c in &ours {
                clocks.push(c);
            }
            let relevant: Vec<bool> = (0..threads).map(|_| rng.below(2) == 0).collect();
            let asked: Vec<u32> = (0..clocks.len() as u32)
                .filter(|_| rng.below(2) == 0)
                .collect();
            let mut want = vec![false; threads as usize];
            for &id in &asked {
                let knows: Vec<u32> = (0..threads)
                    .filter(|&t| clocks.get(id, u64::from(t)) > 0)
                    .collect();
                let rel: Vec<u32> = knows
                    .iter()
                    .copied()
                    .filter(|&t| relevant[t as usize])
                    .collect();
                tries += usize::from(knows.len() > FLAT_MAX);
                pairs += usize::from(knows.len() <= FLAT_MAX && rel.len() >= 2);
                if knows.len() > FLAT_MAX || rel.len() >= 2 {
                    for t in rel {
                        want[t as usize] = true;
                    }
                }
            }
            alone += (0..threads as usize)
                .filter(|&t| relevant[t] && !want[t])
                .count();
            let got = clocks.known_together(asked.iter().copied(), &relevant);
            assert_eq!(got, want, "seed {seed}");
        }
        assert!(
            tries > 0 && alone > 0 && pairs > 0,
            "{tries} {alone} {pairs}"
        );
    }

    /// Every entry of `ours` is `old`'s, over the ids in play and beyond them.
    fn same(arena: &ClockArena, ours: &Clock, old: &VectorClock, ids: &[u32]) {
        for &t in ids.iter().chain(&[1 << 20, u32::MAX]) {
            assert_eq!(
                arena.get(ours, u64::from(t)),
                old.get(u64::from(t)),
                "thread {t}"
            );
        }
        assert_eq!(arena.get(ours, 1 << 40), 0);
    }

    /// [`ClockArena::row`] of `ours` is `old`'s epochs of the first threads (rows of several
    /// widths, up to past the largest id in play or 4096).
    fn same_row(arena: &ClockArena, ours: &Clock, old: &VectorClock, ids: &[u32]) {
        let width = ids
            .iter()
            .map(|&t| t as usize + 2)
            .max()
            .unwrap_or(0)
            .min(1 << 12);
        for w in [0, 1, 5, width] {
            let mut row = vec![7; w];
            arena.row(ours, &mut row);
            for (t, &e) in row.iter().enumerate() {
                assert_eq!(e, old.get(t as u64), "row entry {t} of {w}");
            }
        }
    }

    /// Random fork/join/tick traces replayed through both representations, with snapshots
    /// (the clocks a model interns) taken along the way: every thread's clock and every
    /// snapshot read alike at every step, equality and hashes agree with the old clocks', and
    /// a snapshot never changes when the clocks it shares nodes with do.
    #[test]
    fn shared_clocks_answer_as_vector_clocks_on_random_fork_join_traces() {
        for seed in 1..=60u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let threads = 2 + rng.below(60) as usize;
            // Sparse ids in some runs (tries of several heights), dense in others (chains).
            let spread = [threads as u64, 300, 70_000][rng.below(3) as usize];
            let mut ids: Vec<u32> = Vec::new();
            while ids.len() < threads {
                let t = rng.below(spread.max(threads as u64)) as u32;
                if !ids.contains(&t) {
                    ids.push(t);
                }
            }
            let mut arena = ClockArena::new();
            let mut ours: Vec<Clock> = ids.iter().map(|&t| Clock::new_thread(t)).collect();
            let mut old: Vec<VectorClock> = ids
                .iter()
                .map(|&t| {
                    let mut c = VectorClock::new();
                    c.set(u64::from(t), 1);
                    c
                })
                .collect();
            let mut snaps: Vec<(Clock, VectorClock)> = Vec::new();
            let steps = 50 + rng.below(400);
            for step in 0..steps {
                let p = rng.below(threads as u64) as usize;
                // Mostly chains (each thread starts the next), sometimes anything.
                let c = if rng.below(3) == 0 {
                    rng.below(threads as u64) as usize
                } else {
                    (p + 1) % threads
                };
                match rng.below(8) {
                    0..=3 if p != c => {
                        // Fork, as the model replays it.
                        let pc = arena.clone_clock(&ours[p]);
                        arena.join(&mut ours[c], &pc);
                        arena.release(pc);
                        arena.tick(&mut ours[c], ids[c]);
                        arena.tick(&mut ours[p], ids[p]);
                        let po = old[p].clone();
                        old[c].join(&po);
                        old[c].tick(u64::from(ids[c]));
                        old[p].tick(u64::from(ids[p]));
                    }
                    4..=5 if p != c => {
                        // Join.
                        let cc = arena.clone_clock(&ours[c]);
                        arena.join(&mut ours[p], &cc);
                        arena.release(cc);
                        arena.tick(&mut ours[c], ids[c]);
                        let co = old[c].clone();
                        old[p].join(&co);
                        old[c].tick(u64::from(ids[c]));
                    }
                    6 => {
                        snaps.push((arena.clone_clock(&ours[p]), old[p].clone()));
                    }
                    _ => {
                        // A snapshot let go (a clock replaced), to exercise freeing.
                        if !snaps.is_empty() {
                            let i = rng.below(snaps.len() as u64) as usize;
                            let (c, _) = snaps.swap_remove(i);
                            arena.release(c);
                        }
                    }
                }
                for (o, v) in ours.iter().zip(&old) {
                    same(&arena, o, v, &ids);
                }
                if step % 16 == 0 || step + 1 == steps {
                    for (o, v) in &snaps {
                        same(&arena, o, v, &ids);
                        same_row(&arena, o, v, &ids);
                    }
                    for (o, v) in ours.iter().zip(&old) {
                        same_row(&arena, o, v, &ids);
                    }
                    let all: Vec<(&Clock, &VectorClock)> = ours
                        .iter()
                        .zip(&old)
                        .chain(snaps.iter().map(|(a, b)| (a, b)))
                        .collect();
                    for (i, (a, va)) in all.iter().enumerate() {
                        for (b, vb) in &all[i..] {
                            let equal = va == vb;
                            assert_eq!(arena.eq(a, b), equal, "seed {seed} step {step}");
                            if equal {
                                assert_eq!(arena.hash(a), arena.hash(b));
                            }
                        }
                    }
                }
            }
            for c in ours.into_iter().chain(snaps.into_iter().map(|s| s.0)) {
                arena.release(c);
            }
            assert_eq!(
                arena.free.len() + 1,
                arena.nodes(),
                "seed {seed}: every node freed once every clock is released"
            );
        }
    }

    /// A chain of forks shares its clocks' nodes: a few paths per fork, not the ancestors.
    #[test]
    fn a_chain_of_forks_costs_nodes_linear_in_its_length() {
        let n = 20_000u32;
        let mut arena = ClockArena::new();
        let mut clocks: Vec<Clock> = vec![Clock::new_thread(0)];
        for c in 1..=n {
            let p = c - 1;
            let mut child = Clock::new_thread(c);
            let pc = arena.clone_clock(&clocks[p as usize]);
            arena.join(&mut child, &pc);
            arena.release(pc);
            arena.tick(&mut child, c);
            arena.tick(&mut clocks[p as usize], p);
            clocks.push(child);
        }
        assert_eq!(arena.get(&clocks[n as usize], 0), 1);
        assert_eq!(arena.get(&clocks[n as usize], u64::from(n - 1)), 2);
        assert_eq!(arena.get(&clocks[n as usize], u64::from(n)), 2);
        // Height 8 for 20,001 threads: at most 2 new paths per fork.
        assert!(
            arena.nodes() < 20 * n as usize,
            "{} nodes for a chain of {n} forks",
            arena.nodes()
        );
    }
}
