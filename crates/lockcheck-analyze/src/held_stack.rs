//! A thread's stack of holds during the replay, read as a slice (bottom first), that stays linear
//! when it grows without bound: a hostile trace that takes 200,000 locks without releasing them
//! and then releases them in the order it took them (first in, first out), or has another
//! thread take the same locks, made every release and every acquisition a walk of the whole
//! stack and a `memmove` of it (36 s and 19 s for 400,000 events).
//!
//! Two things keep it linear, both off the usual path (a release of the top, an acquisition of a
//! lock nobody holds): a removal moves the shorter side of the stack (the bottom side by
//! advancing where the stack starts, as `VecDeque` does, but keeping the holds one slice, which
//! every walk of the held set reads), and a stack of [`HeldStack::INDEXED`] holds or more counts
//! its holds per lock, so that "does this thread hold `l`" is one lookup. The search of a hold to
//! remove walks from both ends at once: a release of the bottom or the top costs one step.
//! What stays: a release from the middle of a deep stack costs its distance to the nearer end
//! (200,000 holds given back in random order: 11 s). Written by hand: `VecDeque` is not one
//! slice, and the count travels with the stack.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};

/// One hold's lock, as the stack counts them.
pub(crate) trait HoldsLock {
    /// The lock held.
    fn lock(&self) -> u32;
}

type Counts = HashMap<u32, u32, foldhash::fast::RandomState>;

/// A stack of holds (see the module's documentation).
#[derive(Debug)]
pub(crate) struct HeldStack<H> {
    buf: Vec<H>,
    /// Where the stack starts in `buf` (what removals near the bottom left behind).
    start: usize,
    /// Holds per lock, there exactly while the stack has [`HeldStack::INDEXED`] holds or more.
    counts: Option<Box<Counts>>,
}

impl<H> Default for HeldStack<H> {
    fn default() -> Self {
        HeldStack {
            buf: Vec::new(),
            start: 0,
            counts: None,
        }
    }
}

impl<H: HoldsLock + Copy> HeldStack<H> {
    /// From this many holds on, the stack counts its holds per lock (a stack that goes up and
    /// down across it counts them again each time: at most this many steps).
    pub(crate) const INDEXED: usize = 64;

    /// Pushes a hold on the top; returns the stack's length after.
    #[inline]
    pub(crate) fn push(&mut self, h: H) -> usize {
        self.buf.push(h);
        let len = self.buf.len() - self.start;
        // (`counts` is there exactly when the stack has `INDEXED` holds or more.)
        if len >= Self::INDEXED {
            self.pushed_deep();
        }
        len
    }

    #[cold]
    #[inline(never)]
    fn pushed_deep(&mut self) {
        match self.counts.as_deref_mut() {
            Some(c) => {
                let l = self.buf[self.buf.len() - 1].lock();
                *c.entry(l).or_insert(0) += 1;
            }
            None => {
                let mut c = Counts::default();
                for h in &self.buf[self.start..] {
                    *c.entry(h.lock()).or_insert(0) += 1;
                }
                self.counts = Some(Box::new(c));
            }
        }
    }

    /// Removes the top hold.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<H> {
        if self.buf.len() <= self.start {
            return None;
        }
        let h = self.buf.pop()?;
        if self.start != 0 || self.buf.len() >= Self::INDEXED - 1 {
            self.removed(&h);
        }
        Some(h)
    }

    /// Removes the top hold if it is of lock `l` (a release in the usual order), returning its
    /// index (the stack's length after).
    #[inline]
    pub(crate) fn pop_if_top(&mut self, l: u32) -> Option<usize> {
        let n = self.buf.len();
        if n <= self.start {
            return None;
        }
        let h = self.buf[n - 1];
        if h.lock() != l {
            return None;
        }
        let i = n - 1 - self.start;
        self.buf.truncate(n - 1);
        if self.start != 0 || n >= Self::INDEXED {
            self.removed(&h);
        }
        Some(i)
    }

    /// Removes hold `i` (from the bottom), moving the shorter side of the stack.
    pub(crate) fn remove(&mut self, i: usize) -> H {
        let len = self.len();
        assert!(i < len, "hold {i} of {len}");
        let h = if i < len - 1 - i {
            // The holds below `i` move up by one, and the stack starts one further (what is
            // left below `start` is never read).
            let at = self.start + i;
            let h = self.buf[at];
            self.buf.copy_within(self.start..at, self.start + 1);
            self.start += 1;
            h
        } else {
            self.buf.remove(self.start + i)
        };
        self.removed(&h);
        h
    }

    #[inline(never)]
    fn removed(&mut self, h: &H) {
        let len = self.len();
        if len == 0 {
            self.buf.clear();
            self.start = 0;
        } else if self.start > len && self.start >= Self::INDEXED {
            // Mostly dead room below the stack: give it back (amortized over the removals
            // that made it).
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if len < Self::INDEXED {
            self.counts = None;
        } else if let Some(c) = self.counts.as_deref_mut() {
            if let Some(n) = c.get_mut(&h.lock()) {
                *n -= 1;
                if *n == 0 {
                    c.remove(&h.lock());
                }
            }
        }
    }

    /// Removes every hold.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.counts = None;
    }

    /// Whether some hold is of lock `l`.
    #[inline]
    pub(crate) fn holds(&self, l: u32) -> bool {
        match self.counts.as_deref() {
            Some(c) => c.contains_key(&l),
            None => self.iter().any(|h| h.lock() == l),
        }
    }

    /// The topmost hold of lock `l`, searched from both ends at once (a hold near either end
    /// is found in a few steps).
    pub(crate) fn rposition_lock(&self, l: u32) -> Option<usize> {
        let s = &self[..];
        let Some(c) = self.counts.as_deref() else {
            return s.iter().rposition(|h| h.lock() == l);
        };
        // From the top down and from the bottom up: the first from the top is the answer; a
        // hit from the bottom is the answer if no hold above it is of `l`, which the count
        // tells (one hold of `l`), else the search from the top goes on.
        let once = match c.get(&l) {
            None => return None,
            Some(n) => *n == 1,
        };
        let (mut lo, mut hi) = (0, s.len());
        while lo < hi {
            hi -= 1;
            if s[hi].lock() == l {
                return Some(hi);
            }
            if once && lo < hi {
                if s[lo].lock() == l {
                    return Some(lo);
                }
                lo += 1;
            }
        }
        None
    }
}

impl<H> Deref for HeldStack<H> {
    type Target = [H];
    #[inline]
    fn deref(&self) -> &[H] {
        debug_assert!(self.start <= self.buf.len());
        // SAFETY: `start <= buf.len()` always (every change of either keeps it: `start` grows
        // only past a live hold, and goes back to 0 with every clear or drain of `buf`).
        unsafe { self.buf.get_unchecked(self.start..) }
    }
}

impl<H> DerefMut for HeldStack<H> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [H] {
        debug_assert!(self.start <= self.buf.len());
        // SAFETY: as in `deref`.
        unsafe { self.buf.get_unchecked_mut(self.start..) }
    }
}

impl<'a, H> IntoIterator for &'a HeldStack<H> {
    type Item = &'a H;
    type IntoIter = std::slice::Iter<'a, H>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    struct H(u32, u32);

    impl HoldsLock for H {
        fn lock(&self) -> u32 {
            self.0
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(u32),
        Pop,
        /// Remove the topmost hold of the lock (a release), if held.
        Release(u32),
        /// Remove the hold at this fraction of the stack.
        RemoveAt(u8),
        /// Remove the top hold if it is of the lock (40 and up: the top's own lock).
        PopIfTop(u32),
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u32..40).prop_map(Op::Push),
            2 => Just(Op::Pop),
            3 => (0u32..40).prop_map(Op::Release),
            2 => any::<u8>().prop_map(Op::RemoveAt),
            3 => (0u32..80).prop_map(Op::PopIfTop),
            1 => Just(Op::Clear),
        ]
    }

    /// Applies `ops` to a stack and to a `Vec`, which must agree after every step: the slice,
    /// `holds` and `rposition_lock` of every lock.
    fn agrees(ops: &[Op], bias_push: usize) {
        let mut s = HeldStack::<H>::default();
        let mut v: Vec<H> = Vec::new();
        let mut serial = 0;
        for op in ops {
            // Grow past the indexed size now and then.
            for _ in 0..bias_push {
                serial += 1;
                s.push(H(serial % 50, serial));
                v.push(H(serial % 50, serial));
            }
            match *op {
                Op::Push(l) => {
                    serial += 1;
                    s.push(H(l, serial));
                    v.push(H(l, serial));
                }
                Op::Pop => assert_eq!(s.pop(), v.pop()),
                Op::Release(l) => {
                    let i = v.iter().rposition(|h| h.0 == l);
                    assert_eq!(s.rposition_lock(l), i);
                    if let Some(i) = i {
                        assert_eq!(s.remove(i), v.remove(i));
                    }
                }
                Op::RemoveAt(f) => {
                    if !v.is_empty() {
                        let i = f as usize * v.len() / 256;
                        assert_eq!(s.remove(i), v.remove(i));
                    }
                }
                Op::PopIfTop(l) => {
                    let l = match v.last() {
                        Some(h) if l >= 40 => h.0,
                        _ => l,
                    };
                    let top = v.last().is_some_and(|h| h.0 == l);
                    let expect = if top {
                        v.pop();
                        Some(v.len())
                    } else {
                        None
                    };
                    assert_eq!(s.pop_if_top(l), expect);
                }
                Op::Clear => {
                    s.clear();
                    v.clear();
                }
            }
            assert_eq!(&s[..], &v[..]);
            // Counted from `INDEXED` holds on.
            assert_eq!(s.counts.is_some(), v.len() >= HeldStack::<H>::INDEXED);
            for l in 0..50 {
                assert_eq!(s.holds(l), v.iter().any(|h| h.0 == l), "holds {l}");
                assert_eq!(
                    s.rposition_lock(l),
                    v.iter().rposition(|h| h.0 == l),
                    "position of {l}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn a_stack_agrees_with_a_vec(ops in prop::collection::vec(op(), 0..300), bias in 0usize..3) {
            agrees(&ops, bias);
        }
    }

    #[test]
    fn removals_at_the_bottom_give_the_room_back() {
        let mut s = HeldStack::<H>::default();
        for i in 0..10_000 {
            s.push(H(i, i));
        }
        for i in 0..9_000 {
            assert_eq!(s.rposition_lock(i), Some(0));
            assert_eq!(s.remove(0), H(i, i));
            if i == 0 {
                // The bottom side moved (one hold), not the 9,999 above it.
                assert_eq!(s.start, 1);
            }
        }
        assert_eq!(s.len(), 1_000);
        assert!(
            s.start <= s.len(),
            "{} dead below {} live",
            s.start,
            s.len()
        );
        assert_eq!(s[0], H(9_000, 9_000));
        assert!(s.holds(9_999) && !s.holds(0));
    }
}
