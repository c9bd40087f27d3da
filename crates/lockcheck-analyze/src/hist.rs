//! A small log-bucketed histogram of durations (nanoseconds), HDR style.
//!
//! Written by hand because it is tiny: 16 sub-buckets per power of two bound the relative error of
//! a percentile to 1/16 (6.25%), and a class that never records a non-zero value allocates nothing
//! (foreign trace formats carry no timings at all).

use serde::{Deserialize, Serialize};

const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = (SUB + (64 - SUB_BITS as u64) * SUB) as usize;

/// A bounded summary of a distribution of `u64` values: exact count, sum and max, approximate
/// percentiles (within 6.25%, always rounded up, never above the max).
///
/// 24 bytes while it holds only zeros: every class has two (wait and hold), and a research
/// trace has a class per lock and no timings (with the sum, max and bucket vector inline, 64
/// bytes each: 80 MB more per million locks).
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    count: u64,
    zeros: u64,
    /// The values above 0, from the first one on.
    nonzero: Option<Box<Nonzero>>,
}

/// What a [`Histogram`] keeps of its values above 0.
#[derive(Clone, Debug)]
struct Nonzero {
    sum: u128,
    max: u64,
    buckets: [u64; BUCKETS],
}

fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let e = 63 - v.leading_zeros();
    let m = (v >> (e - SUB_BITS)) & (SUB - 1);
    (SUB + (e - SUB_BITS) as u64 * SUB + m) as usize
}

/// Largest value that falls into bucket `i`.
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let e = (i - SUB) / SUB + SUB_BITS as u64;
    let m = (i - SUB) % SUB;
    let shift = e - SUB_BITS as u64;
    let lower = (SUB + m) << shift;
    lower.saturating_add((1u64 << shift) - 1)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.count += 1;
        if v == 0 {
            // Every event of the formats without timings: no sum, max or bucket to touch.
            self.zeros += 1;
            return;
        }
        self.record_nonzero(v);
    }

    /// Records `n` values of 0 at once (what `n` calls of [`Histogram::record`]`(0)` do).
    #[inline]
    pub fn record_zeros(&mut self, n: u64) {
        self.count += n;
        self.zeros += n;
    }

    /// The rest of [`Histogram::record`] for a value above 0 (`count` already counts it).
    fn record_nonzero(&mut self, v: u64) {
        let n = self.nonzero.get_or_insert_with(|| {
            Box::new(Nonzero {
                sum: 0,
                max: 0,
                buckets: [0; BUCKETS],
            })
        });
        n.sum += v as u128;
        n.max = n.max.max(v);
        n.buckets[index(v)] += 1;
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Largest value recorded (0 if none).
    pub fn max(&self) -> u64 {
        self.nonzero.as_ref().map_or(0, |n| n.max)
    }

    /// Sum of all values.
    pub fn sum(&self) -> u128 {
        self.nonzero.as_ref().map_or(0, |n| n.sum)
    }

    /// Whether any non-zero value was recorded.
    pub fn has_nonzero(&self) -> bool {
        self.nonzero.is_some()
    }

    /// The value at quantile `q` (0.0..=1.0), rounded up to its bucket's upper bound and capped by
    /// the max. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let Some(n) = self.nonzero.as_ref().filter(|_| rank > self.zeros) else {
            return 0;
        };
        let mut seen = self.zeros;
        for (i, &c) in n.buckets.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i).min(n.max);
            }
        }
        n.max
    }

    /// A summary for reports.
    pub fn summary(&self) -> Distribution {
        Distribution {
            count: self.count,
            p50_ns: self.quantile(0.50),
            p99_ns: self.quantile(0.99),
            max_ns: self.max(),
        }
    }
}

/// Count, median, 99th percentile and maximum of a duration distribution, in nanoseconds.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Distribution {
    /// Number of measurements.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Maximum.
    pub max_ns: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_the_range_monotonically() {
        let mut last = 0;
        for v in [0u64, 1, 15, 16, 17, 31, 32, 1000, 1 << 40, u64::MAX] {
            let i = index(v);
            assert!(i < BUCKETS, "{v}");
            assert!(i >= last);
            assert!(upper(i) >= v, "{v}: upper {}", upper(i));
            last = i;
        }
    }

    #[test]
    fn quantiles_are_within_a_sixteenth() {
        let mut h = Histogram::new();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5);
        assert!((500_000..=500_000 + 500_000 / 16).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99);
        assert!((990_000..=990_000 + 990_000 / 16).contains(&p99), "{p99}");
        assert_eq!(h.quantile(1.0), 1_000_000);
        assert_eq!(h.count(), 1000);
    }

    #[test]
    fn zeros_allocate_nothing() {
        let mut h = Histogram::new();
        h.record(0);
        h.record(0);
        assert!(h.nonzero.is_none());
        assert_eq!(std::mem::size_of::<Histogram>(), 24);
        assert_eq!(h.quantile(0.99), 0);
        assert!(!h.has_nonzero());
    }
}
