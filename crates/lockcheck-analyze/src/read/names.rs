//! An interning table from the text formats' tokens (thread, lock and location names) to their
//! numbers, looked up by the borrowed bytes of the token without allocating.
//!
//! A `HashMap<Box<[u8]>, _>` costs, per look-up of a short token, a general byte hasher, a probe,
//! and a call of `memcmp`: on the planted trace spelled `Thread-3|acq(0x7f3a30ac0)|Foo6.java:400`
//! about 250 instructions of each line's three look-ups. Here a token of up to 16 bytes is hashed
//! from two overlapping words with one folded multiply, keys live in one byte arena, and short keys
//! are compared word by word.

use std::hash::{BuildHasher, Hasher};

/// One key: its hash, where its bytes are in the arena, and its value.
#[derive(Debug, Clone, Copy)]
struct Entry<V> {
    hash: u64,
    start: usize,
    len: usize,
    value: V,
}

/// Token bytes to values, by an open-addressing table over entries whose keys share one arena.
#[derive(Debug)]
pub(super) struct Names<V> {
    /// Index + 1 into `entries`, 0 = empty; the length is 0 or a power of two, at least twice the
    /// number of entries.
    slots: Vec<u32>,
    entries: Vec<Entry<V>>,
    bytes: Vec<u8>,
    /// Mixed into every hash, drawn per table: a trace cannot be written to collide.
    seed: u64,
}

impl<V> Default for Names<V> {
    fn default() -> Names<V> {
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Names {
            slots: Vec::new(),
            entries: Vec::new(),
            bytes: Vec::new(),
            seed,
        }
    }
}

const K1: u64 = 0x243f_6a88_85a3_08d3;
const K2: u64 = 0x1319_8a2e_0370_7344;

/// The 128-bit product of `a` and `b`, folded to 64 bits.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let m = u128::from(a) * u128::from(b);
    (m as u64) ^ ((m >> 64) as u64)
}

/// Bytes 0..8 of `b` as a word; `b` has at least 8.
#[inline(always)]
fn word(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().unwrap_or_default())
}

/// Bytes 0..4 of `b` as a word; `b` has at least 4.
#[inline(always)]
fn half(b: &[u8]) -> u64 {
    u64::from(u32::from_le_bytes(b[..4].try_into().unwrap_or_default()))
}

/// Two words that, with the length, identify a key of up to 16 bytes: its first and last 8 (or
/// 4, or bytes) overlapping.
#[inline(always)]
fn ends(b: &[u8]) -> (u64, u64) {
    let n = b.len();
    if n >= 8 {
        (word(b), word(&b[n - 8..]))
    } else if n >= 4 {
        (half(b), half(&b[n - 4..]))
    } else if n > 0 {
        (
            u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16,
            0,
        )
    } else {
        (0, 0)
    }
}

/// The hash of `b` under `seed`.
#[inline(always)]
fn hash(seed: u64, b: &[u8]) -> u64 {
    let n = b.len();
    let (mut a, mut c) = ends(b);
    if n > 16 {
        // Every whole word before the last 8 bytes, folded in turn.
        let mut acc = seed;
        let mut rest = &b[..n - 8];
        while rest.len() >= 8 {
            acc = fold(word(rest) ^ K1, acc ^ K2);
            rest = &rest[8..];
        }
        a ^= acc;
        c ^= rest.iter().fold(0, |h, &x| h << 8 | u64::from(x));
    }
    fold(a ^ seed ^ K1, c ^ K2 ^ n as u64)
}

/// Whether `a` and `b`, of the same length, are equal: word by word up to 16 bytes.
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    if n > 16 {
        return a == b;
    }
    if n >= 8 {
        word(a) == word(b) && word(&a[n - 8..]) == word(&b[n - 8..])
    } else {
        ends(a) == ends(b)
    }
}

impl<V: Copy> Names<V> {
    /// The value of `key`, if it has one.
    #[inline]
    pub(super) fn get(&self, key: &[u8]) -> Option<V> {
        if self.slots.is_empty() {
            return None;
        }
        let h = hash(self.seed, key);
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let e = *self.slots.get(i)?;
            if e == 0 {
                return None;
            }
            let entry = self.entries.get(e as usize - 1)?;
            if entry.hash == h && entry.len == key.len() {
                let stored = self.bytes.get(entry.start..entry.start + entry.len)?;
                if same(stored, key) {
                    return Some(entry.value);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Gives `key`, which has no value yet, the value `value`.
    pub(super) fn insert(&mut self, key: &[u8], value: V) {
        debug_assert!(self.get(key).is_none());
        if (self.entries.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let h = hash(self.seed, key);
        let start = self.bytes.len();
        self.bytes.extend_from_slice(key);
        self.entries.push(Entry {
            hash: h,
            start,
            len: key.len(),
            value,
        });
        let index = u32::try_from(self.entries.len()).expect("fewer than 2^32 names");
        self.place(h, index);
    }

    /// Puts entry `index` (1-based) of hash `h` in the first free slot of its probe sequence.
    fn place(&mut self, h: u64, index: u32) {
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = index;
    }

    /// Doubles the slots (16 at first) and places every entry again.
    fn grow(&mut self) {
        let len = (self.slots.len() * 2).max(16);
        self.slots = vec![0; len];
        for i in 0..self.entries.len() {
            let h = self.entries[i].hash;
            self.place(h, i as u32 + 1);
        }
    }

    /// How many keys have a value.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// The table answers as a `HashMap` of the same keys: keys that differ in one byte, in
        /// length only, or beyond 16 bytes stay apart.
        #[test]
        fn names_answer_as_a_hash_map(
            keys in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(0u8), Just(0xffu8)], 0..40),
                0..200,
            ),
        ) {
            let mut names = Names::default();
            let mut map = HashMap::new();
            for (i, key) in keys.iter().enumerate() {
                prop_assert_eq!(names.get(key), map.get(key).copied());
                if !map.contains_key(key) {
                    map.insert(key.clone(), i);
                    names.insert(key, i);
                }
                prop_assert_eq!(names.get(key), Some(map[key]));
            }
            prop_assert_eq!(names.len(), map.len());
            for (key, &v) in &map {
                prop_assert_eq!(names.get(key), Some(v));
            }
        }
    }

    #[test]
    fn keys_that_share_their_ends_are_apart() {
        let mut names = Names::default();
        let keys: [&[u8]; 8] = [
            b"",
            b"a",
            b"aa",
            b"aba",
            b"abba",
            b"abcXXXXXXXXXXXXXdef",
            b"abcYYYYYYYYYYYYYdef",
            b"abcXXXXXXXXXXXXXXdef",
        ];
        for (i, k) in keys.iter().enumerate() {
            names.insert(k, i);
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(names.get(k), Some(i));
        }
        assert_eq!(names.get(b"abca"), None);
    }
}
