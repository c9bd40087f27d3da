//! The variants of one edge of the lock-order graph (one per kept dependency), and when a variant
//! makes another redundant ([`subsumes`]).
//!
//! A new dependency is compared with the edge's kept variants both ways: a kept one that
//! subsumes it makes it redundant, and it drops the kept ones it subsumes, so that the list stays
//! an antichain. Subsumption needs a held set contained in the other's, so two variants that share
//! no held lock never subsume each other. Locks created in a loop and nested once each (a new
//! instance pair of a known class edge) share none: once an edge's list is long, an index by held
//! lock ([`Variants`]) finds the few variants that can take part, instead of comparing with all.
//!
//! A class edge keeps its variants in groups of one shape ([`Groups`]): live instance pairs of
//! the edge are one group however many they are, so the edge's bound counts shapes (threads,
//! fork/join epochs, held class sets), not the program's live locks. The instance level keeps a
//! plain [`Variants`] per edge; both are an [`Edge`] to the graph.

use lockcheck_core::deps::VectorClock;
use lockcheck_core::trace::Mode;
use std::sync::Arc;

/// Lists at least this long are indexed by held lock; shorter ones are scanned (a scan of a few
/// variants costs less than keeping the index).
const INDEX_FROM: usize = 16;

/// What [`subsumes`] compares of a dependency: everything but its lock (the edge's) and what a
/// report needs.
#[derive(Clone, Copy)]
pub(crate) struct Shape<'a> {
    pub thread: u64,
    pub mode: Mode,
    /// The held locks (instance numbers, or a dropped lock's marker) with their modes.
    pub held: &'a [(u64, Mode)],
    /// The class of each held lock (as `held`, in order).
    pub classes: &'a [u32],
    /// [`held_sig`] of `held`.
    pub sig: u64,
    pub clock: &'a VectorClock,
}

/// A kept variant: anything with a [`Shape`].
pub(crate) trait Variant {
    /// The part of the variant that [`subsumes`] compares.
    fn shape(&self) -> Shape<'_>;
}

/// A 64-bit summary of a held set (one bit per lock): `a`'s locks can be a subset of `b`'s only
/// if `sig(a) & !sig(b) == 0`, which rejects most candidates of [`subsumes`] in one instruction.
pub(crate) fn held_sig(held: &[(u64, Mode)]) -> u64 {
    held.iter().fold(0, |s, h| {
        s | 1 << (h.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58)
    })
}

/// Whether a kept variant `old` makes `new` redundant for every cycle `new` could be on: any
/// dependency that forms a feasible cycle with `new` forms one with `old` too. Same thread and
/// mode (same pair and link rules), `old` holds a subset of `new`'s locks in the same modes (no
/// gate `new` avoids), and `old` is ordered by fork/join with no dependency `new` is not ordered
/// with: its own epoch is not earlier, and it knows no more of other threads.
pub(crate) fn subsumes(old: Shape<'_>, new: Shape<'_>) -> bool {
    let t = new.thread;
    old.thread == t && no_more_held(old, new) && at_most_as_ordered(old.clock, new.clock, t)
}

/// Same mode, and `old` holds a subset of `new`'s locks in the same modes (no gate `new`
/// avoids, the same link rules): the part of [`subsumes`] (and of the graph's merge of ended
/// threads) that is not about threads.
pub(crate) fn no_more_held(old: Shape<'_>, new: Shape<'_>) -> bool {
    old.mode == new.mode && old.sig & !new.sig == 0 && old.held.iter().all(|h| new.held.contains(h))
}

/// Whether every dependency of another thread that is concurrent with one at clock `new` (of
/// thread `t`) is concurrent with one at clock `old` (also of `t`) too.
fn at_most_as_ordered(old: &VectorClock, new: &VectorClock, t: u64) -> bool {
    // `old` happens before `e` iff old[t] != 0 && old[t] <= e[t]: that must imply the same of
    // `new`. `e` happens before `old` iff e[u] <= old[u] (u: e's thread): so old[u] <= new[u].
    let (o, n) = (old.get(t), new.get(t));
    (o == n || (n != 0 && n <= o)) && old.others_at_most(new, t)
}

/// The variants of one edge, in the order they were kept (the cycle search tries them in that
/// order), with an index by held lock once the list is [`INDEX_FROM`] long.
///
/// The index is two sorted lists of `(held lock, position)`: `holding` has an entry for every
/// held lock of every variant, `topmost` one for each variant's greatest held lock (in the
/// index's order, see [`key`]). Then:
/// a kept `v` can subsume `new` only if `v`'s held set is within `new`'s, so `v`'s greatest held
/// lock is one of `new`'s (`topmost`, one range per lock of `new`); `new` can subsume `v` only if
/// `v` holds every lock of `new`, in particular the one of `new`'s held locks that the fewest
/// variants hold (`holding`, one range). Sorted vectors rather than maps: no allocation per
/// entry, and a new lock's number is usually the greatest so far, an append. A variant that
/// leaves (rare: subsumed, merged, rewritten) rebuilds the index from the list.
pub(crate) struct Variants<V> {
    list: Vec<Arc<V>>,
    holding: Vec<(u64, u32)>,
    topmost: Vec<(u64, u32)>,
    /// Whether `holding` and `topmost` describe `list` (false below [`INDEX_FROM`], or when a
    /// variant holds nothing, which the index cannot describe: then every query scans).
    indexed: bool,
}

impl<V> Default for Variants<V> {
    fn default() -> Self {
        Variants {
            list: Vec::new(),
            holding: Vec::new(),
            topmost: Vec::new(),
            indexed: false,
        }
    }
}

/// A held lock's place in the index: its number with the top bit flipped, so that the graph's
/// markers of dropped locks (top bit set, see `graph::DEAD`) sort before every live lock and a
/// new lock, whose number is the greatest so far, is appended rather than inserted before them.
/// A bijection: the index answers the same for any order.
fn key(lock: u64) -> u64 {
    lock ^ 1 << 63
}

/// The entries of a sorted index for one held lock.
fn range(index: &[(u64, u32)], lock: u64) -> &[(u64, u32)] {
    let lock = key(lock);
    // A new lock, numbered highest so far, is in no kept variant: no search.
    if index.last().is_none_or(|l| l.0 < lock) {
        return &[];
    }
    let start = index.partition_point(|e| e.0 < lock);
    let len = index[start..].partition_point(|e| e.0 == lock);
    &index[start..start + len]
}

/// Inserts an entry into a sorted index (an append when `lock` is the greatest so far).
fn insert(index: &mut Vec<(u64, u32)>, lock: u64, pos: u32) {
    let e = (key(lock), pos);
    if index.last().is_none_or(|&l| l <= e) {
        index.push(e);
    } else {
        let i = index.partition_point(|&x| x < e);
        index.insert(i, e);
    }
}

impl<V: Variant> Variants<V> {
    /// The kept variants, in order.
    pub(crate) fn list(&self) -> &[Arc<V>] {
        &self.list
    }

    /// Number of kept variants.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether the edge has no variant.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether a kept variant subsumes `new` (see [`subsumes`]).
    pub(crate) fn covers(&self, new: Shape<'_>) -> bool {
        if !self.indexed || new.held.is_empty() {
            return self.list.iter().any(|v| subsumes(v.shape(), new));
        }
        new.held.iter().any(|&(lock, _)| {
            range(&self.topmost, lock)
                .iter()
                .any(|&(_, p)| subsumes(self.list[p as usize].shape(), new))
        })
    }

    /// Drops the kept variants that `new` subsumes; returns how many.
    pub(crate) fn drop_covered_by(&mut self, new: Shape<'_>) -> usize {
        let before = self.list.len();
        if !self.indexed || new.held.is_empty() {
            self.list.retain(|v| !subsumes(new, v.shape()));
        } else {
            let fewest = new
                .held
                .iter()
                .map(|&(lock, _)| range(&self.holding, lock))
                .min_by_key(|r| r.len())
                .unwrap_or(&[]);
            let mut gone: Vec<u32> = fewest
                .iter()
                .map(|&(_, p)| p)
                .filter(|&p| subsumes(new, self.list[p as usize].shape()))
                .collect();
            if gone.is_empty() {
                return 0;
            }
            gone.sort_unstable();
            gone.dedup();
            let mut i = 0u32;
            let mut next = gone.iter().peekable();
            self.list.retain(|_| {
                let keep = next.next_if_eq(&&i).is_none();
                i += 1;
                keep
            });
        }
        let gone = before - self.list.len();
        if gone != 0 {
            self.reindex();
        }
        gone
    }

    /// Appends a variant (the caller checked it against the others).
    pub(crate) fn push(&mut self, v: Arc<V>) {
        self.list.push(v);
        if !self.indexed {
            if self.list.len() >= INDEX_FROM {
                self.reindex();
            }
            return;
        }
        let pos = (self.list.len() - 1) as u32;
        let held = self.list[pos as usize].shape().held;
        let Some(top) = held.iter().map(|h| h.0).max_by_key(|&l| key(l)) else {
            self.indexed = false;
            return;
        };
        for &(lock, _) in held {
            insert(&mut self.holding, lock, pos);
        }
        insert(&mut self.topmost, top, pos);
    }

    /// Keeps the variants for which `keep` is true (in order); returns how many left.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&Arc<V>) -> bool) -> usize {
        let before = self.list.len();
        self.list.retain(keep);
        let gone = before - self.list.len();
        if gone != 0 {
            self.reindex();
        }
        gone
    }

    /// Rebuilds the index from the list (or drops it below [`INDEX_FROM`]).
    fn reindex(&mut self) {
        self.holding.clear();
        self.topmost.clear();
        self.indexed = false;
        if self.list.len() < INDEX_FROM {
            return;
        }
        for (pos, v) in self.list.iter().enumerate() {
            let held = v.shape().held;
            let Some(top) = held.iter().map(|h| key(h.0)).max() else {
                self.holding.clear();
                self.topmost.clear();
                return;
            };
            let pos = pos as u32;
            self.holding
                .extend(held.iter().map(|&(lock, _)| (key(lock), pos)));
            self.topmost.push((top, pos));
        }
        self.holding.sort_unstable();
        self.topmost.sort_unstable();
        self.indexed = true;
    }
}

/// What the graph keeps on one edge: [`Variants`] at instance level (each variant is its own
/// group), [`Groups`] at class level.
pub(crate) trait Edge<V>: Default {
    /// Variants kept (what a level's memory bound counts).
    fn members(&self) -> usize;
    /// Groups kept (what the per-edge bound counts).
    fn groups(&self) -> usize;
    /// Whether a kept variant subsumes `new` (see [`subsumes`]).
    fn covers(&self, new: Shape<'_>) -> bool;
    /// Drops the kept variants that `new` subsumes; returns how many.
    fn drop_covered_by(&mut self, new: Shape<'_>) -> usize;
    /// Keeps `v` (the caller checked it against the others), unless that would make more than
    /// `limit` groups: then returns false and keeps nothing.
    fn push_within(&mut self, v: Arc<V>, limit: usize) -> bool;
    /// The members of group `i` (groups in the order they were made, members in the order kept):
    /// variants that differ only by the instances they hold and request, so that the cycle
    /// search may test what does not depend on instances once per group (see `graph::search`).
    fn group(&self, i: usize) -> Option<&[Arc<V>]>;
    /// Every kept variant, group by group.
    fn each<'a>(&'a self) -> impl Iterator<Item = &'a Arc<V>>
    where
        V: 'a;
    /// Keeps the variants for which `keep` is true (in order); returns how many left.
    fn retain(&mut self, keep: impl FnMut(&Arc<V>) -> bool) -> usize;
    /// Takes out the variants for which `take` is true (in order).
    fn extract(&mut self, take: impl FnMut(&Arc<V>) -> bool) -> Vec<Arc<V>>;
    /// Empties the edge; returns whether its memory is small enough to keep for reuse.
    fn clear_small(&mut self) -> bool;
}

impl<V: Variant> Edge<V> for Variants<V> {
    fn members(&self) -> usize {
        self.len()
    }
    fn groups(&self) -> usize {
        self.len()
    }
    fn covers(&self, new: Shape<'_>) -> bool {
        Variants::covers(self, new)
    }
    fn drop_covered_by(&mut self, new: Shape<'_>) -> usize {
        Variants::drop_covered_by(self, new)
    }
    fn push_within(&mut self, v: Arc<V>, limit: usize) -> bool {
        if self.len() >= limit {
            return false;
        }
        self.push(v);
        true
    }
    fn group(&self, i: usize) -> Option<&[Arc<V>]> {
        self.list.get(i).map(std::slice::from_ref)
    }
    fn each<'a>(&'a self) -> impl Iterator<Item = &'a Arc<V>>
    where
        V: 'a,
    {
        self.list.iter()
    }
    fn retain(&mut self, keep: impl FnMut(&Arc<V>) -> bool) -> usize {
        Variants::retain(self, keep)
    }
    fn extract(&mut self, mut take: impl FnMut(&Arc<V>) -> bool) -> Vec<Arc<V>> {
        let mut out = Vec::new();
        // In place: the list keeps its memory (a clone of an `Arc` is a count's increment).
        Variants::retain(self, |v| {
            let t = take(v);
            if t {
                out.push(Arc::clone(v));
            }
            !t
        });
        out
    }
    fn clear_small(&mut self) -> bool {
        self.list.clear();
        self.holding.clear();
        self.topmost.clear();
        self.indexed = false;
        self.list.capacity() <= INDEX_FROM && self.holding.capacity() == 0
    }
}

/// The variants of one class edge, grouped by shape: same thread, mode and fork/join clock, and
/// the same held (class, mode) pairs, counted with multiplicity. Members of a group differ only by
/// the instances they hold and request.
///
/// Why groups: locks created in a loop and kept alive (a server's sessions, each nested once)
/// make one variant per live pair, and none stands for another, because a held instance can be
/// another dependency's gate. Their number grows with the program's live locks; the number of
/// groups does not (it grows with threads, fork/join epochs and held class sets), so the edge's
/// bound counts groups, and the members of a group cost one pointer each (the record is shared
/// with the instance edge).
///
/// Why that is sound: a variant is still dropped only when [`subsumes`] says so (each group is a
/// [`Variants`], and the prefilters below only skip groups that cannot hold a subsuming
/// variant), and the cycle search still considers every member; it only tests once per group what
/// every member answers alike. At class level that is everything but gates: distinct threads,
/// fork/join order (thread and clock), and the link rules (the requester's mode and class, the
/// holder's held classes and modes). Only the gate test (a common held instance in excluding
/// modes) depends on the member, and the search tests it per member.
pub(crate) struct Groups<V> {
    /// In the order they were made (the cycle search tries them in that order).
    groups: Vec<Group<V>>,
    /// Variants over all groups.
    members: usize,
}

/// One group of [`Groups`]: never empty.
struct Group<V> {
    /// [`class_sig`] of the members' held classes and modes.
    sig: u64,
    members: Variants<V>,
}

impl<V> Default for Groups<V> {
    fn default() -> Self {
        Groups {
            groups: Vec::new(),
            members: 0,
        }
    }
}

/// A 64-bit summary of a shape's held (class, mode) pairs: a variant can subsume another only if
/// its summary is within the other's (its held locks are among the other's, and a lock's class
/// never changes, a dropped lock's marker keeping it).
fn class_sig(s: Shape<'_>) -> u64 {
    s.classes.iter().zip(s.held).fold(0, |acc, (&c, &(_, m))| {
        let k = u64::from(c) << 3 | m as u64;
        acc | 1 << (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58)
    })
}

/// Whether two shapes belong to one group of [`Groups`].
fn same_group(a: Shape<'_>, b: Shape<'_>) -> bool {
    let n = a.held.len();
    let pair = |s: &Shape<'_>, i: usize| (s.classes[i], s.held[i].1);
    let count = |s: &Shape<'_>, p| (0..n).filter(|&i| pair(s, i) == p).count();
    // The same pairs in the same order (a loop's nestings) are the same multiset: no counting.
    let same_order = || a.classes == b.classes && (0..n).all(|i| a.held[i].1 == b.held[i].1);
    a.thread == b.thread
        && a.mode == b.mode
        && n == b.held.len()
        // A thread's records of one epoch share their clock: one comparison of addresses.
        && (std::ptr::eq(a.clock, b.clock) || a.clock == b.clock)
        && (same_order() || (0..n).all(|i| count(&a, pair(&a, i)) == count(&b, pair(&a, i))))
}

impl<V: Variant> Groups<V> {
    /// The group `s` belongs to (searched from the newest: a thread repeating an edge adds to
    /// its last group).
    fn group_of(&self, s: Shape<'_>, sig: u64) -> Option<usize> {
        self.groups
            .iter()
            .rposition(|g| g.sig == sig && same_group(g.members.list()[0].shape(), s))
    }
}

impl<V: Variant> Edge<V> for Groups<V> {
    fn members(&self) -> usize {
        self.members
    }
    fn groups(&self) -> usize {
        self.groups.len()
    }
    fn covers(&self, new: Shape<'_>) -> bool {
        // A subsuming variant has `new`'s thread and mode, and held pairs within `new`'s.
        let sig = class_sig(new);
        self.groups.iter().any(|g| {
            let s = g.members.list()[0].shape();
            s.thread == new.thread
                && s.mode == new.mode
                && g.sig & !sig == 0
                && g.members.covers(new)
        })
    }
    fn drop_covered_by(&mut self, new: Shape<'_>) -> usize {
        let sig = class_sig(new);
        let mut gone = 0;
        for g in &mut self.groups {
            let s = g.members.list()[0].shape();
            if s.thread == new.thread && s.mode == new.mode && sig & !g.sig == 0 {
                gone += g.members.drop_covered_by(new);
            }
        }
        if gone != 0 {
            self.groups.retain(|g| !g.members.is_empty());
            self.members -= gone;
        }
        gone
    }
    fn push_within(&mut self, v: Arc<V>, limit: usize) -> bool {
        let (s, sig) = (v.shape(), class_sig(v.shape()));
        match self.group_of(s, sig) {
            Some(i) => self.groups[i].members.push(v),
            None if self.groups.len() >= limit => return false,
            None => {
                let mut members = Variants::default();
                members.push(v);
                self.groups.push(Group { sig, members });
            }
        }
        self.members += 1;
        true
    }
    fn group(&self, i: usize) -> Option<&[Arc<V>]> {
        self.groups.get(i).map(|g| g.members.list())
    }
    fn each<'a>(&'a self) -> impl Iterator<Item = &'a Arc<V>>
    where
        V: 'a,
    {
        self.groups.iter().flat_map(|g| g.members.list())
    }
    fn retain(&mut self, mut keep: impl FnMut(&Arc<V>) -> bool) -> usize {
        let gone: usize = self
            .groups
            .iter_mut()
            .map(|g| g.members.retain(&mut keep))
            .sum();
        if gone != 0 {
            self.groups.retain(|g| !g.members.is_empty());
            self.members -= gone;
        }
        gone
    }
    fn extract(&mut self, mut take: impl FnMut(&Arc<V>) -> bool) -> Vec<Arc<V>> {
        let mut out = Vec::new();
        for g in &mut self.groups {
            out.extend(Edge::extract(&mut g.members, &mut take));
        }
        if !out.is_empty() {
            self.groups.retain(|g| !g.members.is_empty());
            self.members -= out.len();
        }
        out
    }
    fn clear_small(&mut self) -> bool {
        // Class nodes are never removed: no reuse to prepare.
        *self = Groups::default();
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A variant for the tests: a shape's parts, owned.
    struct Dep {
        thread: u64,
        mode: Mode,
        held: Vec<(u64, Mode)>,
        classes: Vec<u32>,
        sig: u64,
        clock: VectorClock,
    }

    impl Variant for Dep {
        fn shape(&self) -> Shape<'_> {
            Shape {
                thread: self.thread,
                mode: self.mode,
                held: &self.held,
                classes: &self.classes,
                sig: self.sig,
                clock: &self.clock,
            }
        }
    }

    fn dep(thread: u64, held: &[u64], epoch: u32) -> Arc<Dep> {
        let held: Vec<(u64, Mode)> = held.iter().map(|&l| (l, Mode::Exclusive)).collect();
        let mut clock = VectorClock::new();
        clock.set(thread, epoch);
        Arc::new(Dep {
            thread,
            mode: Mode::Exclusive,
            sig: held_sig(&held),
            classes: held.iter().map(|&(l, _)| (l % 5) as u32).collect(),
            held,
            clock,
        })
    }

    /// What the graph does with a new variant: kept unless covered, dropping what it covers.
    fn add(vs: &mut Variants<Dep>, d: Arc<Dep>) -> bool {
        if vs.covers(d.shape()) {
            return false;
        }
        vs.drop_covered_by(d.shape());
        vs.push(d);
        true
    }

    /// The same by scanning the whole list, as before the index.
    fn add_scan(list: &mut Vec<Arc<Dep>>, d: Arc<Dep>) -> bool {
        if list.iter().any(|v| subsumes(v.shape(), d.shape())) {
            return false;
        }
        list.retain(|v| !subsumes(d.shape(), v.shape()));
        list.push(d);
        true
    }

    fn same(vs: &Variants<Dep>, list: &[Arc<Dep>]) -> bool {
        vs.list().len() == list.len() && vs.list().iter().zip(list).all(|(a, b)| Arc::ptr_eq(a, b))
    }

    /// Fresh pairs of a known class edge (each variant holds its own new lock) are kept, and the
    /// index is what answers (the list is far past `INDEX_FROM`); a variant holding one of them
    /// plus more is covered, one holding a subset of one covers it, as with a scan.
    #[test]
    fn fresh_locks_are_kept_and_the_index_still_finds_subsets_both_ways() {
        let mut vs = Variants::default();
        for lock in 100..200 {
            assert!(add(&mut vs, dep(1, &[7, lock], 1)));
        }
        assert!(vs.indexed);
        assert_eq!(vs.len(), 100);
        // Holds more than a kept one: covered (a look-alike that adds nothing).
        assert!(!add(&mut vs, dep(1, &[7, 150, 300], 1)));
        // Another thread: never covered.
        assert!(add(&mut vs, dep(2, &[7, 150, 300], 1)));
        // Holds less than a kept one of its thread: that one dropped (not thread 2's), the new
        // one kept.
        assert!(add(&mut vs, dep(1, &[150], 1)));
        assert_eq!(vs.len(), 101);
        assert!(vs
            .list()
            .iter()
            .all(|v| v.held != [(7, Mode::Exclusive), (150, Mode::Exclusive)]));
        // Now [150] alone covers [7, 150] of thread 1.
        assert!(!add(&mut vs, dep(1, &[7, 150], 1)));
        // A later epoch of its own thread is more ordered: not covered, though the locks are.
        assert!(add(&mut vs, dep(1, &[7, 150], 2)));
    }

    /// The index answers as the scan does, on many random lists: same kept variants, same order.
    #[test]
    fn the_index_agrees_with_the_scan() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut indexed = 0;
        for _ in 0..200 {
            let mut vs = Variants::default();
            let mut list = Vec::new();
            for _ in 0..80 {
                let held: Vec<u64> = (0..1 + next(3)).map(|_| 1 + next(24)).collect();
                let d = dep(1 + next(2), &held, 1 + next(2) as u32);
                assert_eq!(add(&mut vs, d.clone()), add_scan(&mut list, d));
                assert!(same(&vs, &list));
            }
            indexed += usize::from(vs.indexed);
            // Variants leaving by another way keep the index true.
            vs.retain(|v| v.thread != 2);
            list.retain(|v| v.thread != 2);
            assert!(same(&vs, &list));
            for _ in 0..40 {
                let held: Vec<u64> = (0..1 + next(3)).map(|_| 1 + next(24)).collect();
                let d = dep(1 + next(2), &held, 1 + next(2) as u32);
                assert_eq!(add(&mut vs, d.clone()), add_scan(&mut list, d));
                assert!(same(&vs, &list));
            }
        }
        assert!(
            indexed > 100,
            "the index answered in {indexed} lists of 200"
        );
    }
}
