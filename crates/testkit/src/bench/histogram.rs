//! A bounded-memory latency histogram with log-linear buckets (HDR-style).
//!
//! Values (microseconds) below [`EXACT`] are counted exactly; above, each power of two is split
//! into [`SUB_BUCKETS`] equal buckets, so a recorded value is known to within 1/64 (about 1.6 %)
//! of itself. Memory is fixed (a few thousand counters) whatever the run length, and two
//! histograms merge by adding counters, so every client keeps its own and the results are summed
//! at the end without any locking on the hot path.

/// Values below this are counted exactly (one bucket per microsecond).
pub const EXACT: u64 = 2 * SUB_BUCKETS;
/// Buckets per power of two above [`EXACT`].
pub const SUB_BUCKETS: u64 = 64;
/// log2 of [`SUB_BUCKETS`].
const SUB_BITS: u32 = SUB_BUCKETS.trailing_zeros();
/// Number of buckets: exact ones, then 64 per power of two from 2^7 up to 2^63.
const BUCKETS: usize = (EXACT + (64 - 7) * SUB_BUCKETS) as usize;

/// Counts of values (microseconds) in log-linear buckets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// The bucket index of `value`.
fn index_of(value: u64) -> usize {
    if value < EXACT {
        return value as usize;
    }
    let exp = 63 - value.leading_zeros(); // floor(log2 value), >= 7
    let shift = exp - SUB_BITS; // value >> shift is in [64, 128)
    let sub = (value >> shift) - SUB_BUCKETS;
    (EXACT + u64::from(exp - 7) * SUB_BUCKETS + sub) as usize
}

/// The smallest and largest values that land in bucket `index`.
fn bounds_of(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < EXACT {
        return (index, index);
    }
    let exp = (index - EXACT) / SUB_BUCKETS + 7;
    let sub = (index - EXACT) % SUB_BUCKETS + SUB_BUCKETS;
    let shift = exp - u64::from(SUB_BITS);
    let low = sub << shift;
    let high = low + ((1u64 << shift) - 1);
    (low, high)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Counts one value.
    pub fn record(&mut self, value: u64) {
        self.counts[index_of(value)] += 1;
        self.total += 1;
        self.sum += u128::from(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Adds every count of `other` to this one.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The smallest value recorded (0 when empty).
    pub fn min(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            self.min
        }
    }

    /// The largest value recorded, exactly (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean of the recorded values, exactly (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value at percentile `p` (0 to 100): the smallest bucket such that at least `p` % of
    /// the values are at or below it, reported as the middle of that bucket and clamped to the
    /// exact minimum and maximum. 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let p = p.clamp(0.0, 100.0);
        // The rank (1-based) of the wanted value; at least 1 so p=0 gives the minimum. The
        // epsilon keeps float noise (99.9 is not exact in binary) from adding one to the rank.
        let rank = (p * self.total as f64 / 100.0 - 1e-9).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, high) = bounds_of(index);
                let mid = low + (high - low) / 2;
                return mid.clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.percentile(50.0), 50);
        assert_eq!(h.percentile(99.0), 99);
        assert_eq!(h.percentile(99.9), 100);
        assert_eq!(h.percentile(100.0), 100);
        assert_eq!(h.percentile(0.0), 1);
        assert_eq!(h.min(), 1);
        assert_eq!(h.max(), 100);
        assert!((h.mean() - 50.5).abs() < 1e-9);
    }

    #[test]
    fn empty_histogram_reports_zero() {
        let h = Histogram::new();
        assert_eq!(h.count(), 0);
        assert_eq!(h.percentile(50.0), 0);
        assert_eq!(h.min(), 0);
        assert_eq!(h.max(), 0);
        assert_eq!(h.mean(), 0.0);
    }

    #[test]
    fn buckets_cover_every_value_in_order() {
        // Each bucket's bounds contain the values that map to it, and buckets are contiguous.
        let mut previous_high = None;
        for index in 0..BUCKETS {
            let (low, high) = bounds_of(index);
            assert!(low <= high);
            assert_eq!(index_of(low), index, "low of {index}");
            assert_eq!(index_of(high), index, "high of {index}");
            if let Some(prev) = previous_high {
                assert_eq!(low, prev + 1, "gap before bucket {index}");
            }
            previous_high = Some(high);
        }
        assert_eq!(previous_high, Some(u64::MAX));
        assert_eq!(index_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn relative_error_is_bounded() {
        for v in [
            128u64,
            1_000,
            4_321,
            65_535,
            1_000_000,
            123_456_789,
            1 << 40,
        ] {
            let mut h = Histogram::new();
            h.record(1);
            h.record(v);
            h.record(u64::MAX / 4); // keep v away from the max clamp
            let got = h.percentile(50.0);
            let err = (got as f64 - v as f64).abs() / v as f64;
            assert!(err <= 1.0 / 64.0, "{v}: got {got}, error {err}");
        }
    }

    #[test]
    fn percentiles_of_a_skewed_distribution() {
        // 990 fast requests at 1 ms, 9 slow at 50 ms, one very slow at 2 s.
        let mut h = Histogram::new();
        for _ in 0..990 {
            h.record(1_000);
        }
        for _ in 0..9 {
            h.record(50_000);
        }
        h.record(2_000_000);
        let near = |got: u64, want: u64| (got as f64 - want as f64).abs() / want as f64 <= 0.016;
        assert!(near(h.percentile(50.0), 1_000));
        assert!(near(h.percentile(99.0), 1_000));
        assert!(near(h.percentile(99.9), 50_000));
        assert_eq!(h.percentile(100.0), 2_000_000);
        assert_eq!(h.max(), 2_000_000);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        for v in 0..50 {
            a.record(v);
        }
        for v in 50..100 {
            b.record(v);
        }
        let mut all = Histogram::new();
        for v in 0..100 {
            all.record(v);
        }
        a.merge(&b);
        assert_eq!(a, all);
        assert_eq!(a.percentile(50.0), 49);
        // Merging an empty histogram changes nothing (its min is u64::MAX internally).
        a.merge(&Histogram::new());
        assert_eq!(a, all);
    }
}
