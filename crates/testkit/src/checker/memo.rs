//! The search's memory of configurations already explored, with dominance for indeterminate
//! operations.
//!
//! A configuration is (determinate operations linearized, register state, indeterminate
//! operations linearized). Two with the same first two parts differ only in which indeterminate
//! operations were used up; since an indeterminate operation may also never take effect, the
//! one that used fewer can do everything the other can. So a configuration is skipped when one
//! with the same determinate set and state and a subset of its indeterminate operations was seen
//! (Lowe's memoization is the case without indeterminate operations). This keeps histories with
//! many timed-out writes from blowing up the search.

use std::collections::HashMap;

/// A fixed-size bit set over operation indices.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Bits(Vec<u64>);

impl Bits {
    /// An empty set able to hold `0..len`.
    pub(super) fn new(len: usize) -> Bits {
        Bits(vec![0; len.div_ceil(64)])
    }

    /// Adds `i`.
    pub(super) fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    /// Removes `i`.
    pub(super) fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }

    /// Whether `i` is in.
    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    /// Whether every member of `self` is in `other` (same capacity).
    fn is_subset(&self, other: &[u64]) -> bool {
        self.0.iter().zip(other).all(|(a, b)| a & !b == 0)
    }
}

/// The operations linearized so far: determinate and indeterminate ones apart, with an
/// incremental (Zobrist) hash of the determinate set so a lookup needs no allocation.
#[derive(Clone, Debug)]
pub(super) struct Linearized {
    determinate: Bits,
    indeterminate: Bits,
    hash: u64,
}

impl Linearized {
    /// Nothing linearized, out of `determinate` and `indeterminate` operations.
    pub(super) fn new(determinate: usize, indeterminate: usize) -> Linearized {
        Linearized {
            determinate: Bits::new(determinate),
            indeterminate: Bits::new(indeterminate),
            hash: 0,
        }
    }

    /// Adds (`on`) or removes operation `slot` of the determinate or the indeterminate set.
    pub(super) fn set(&mut self, determinate: bool, slot: usize, on: bool) {
        if determinate {
            self.hash ^= zobrist(slot);
            if on {
                self.determinate.insert(slot);
            } else {
                self.determinate.remove(slot);
            }
        } else if on {
            self.indeterminate.insert(slot);
        } else {
            self.indeterminate.remove(slot);
        }
    }

    /// Whether operation `slot` of the determinate or the indeterminate set is in.
    pub(super) fn has(&self, determinate: bool, slot: usize) -> bool {
        let bits = if determinate {
            &self.determinate
        } else {
            &self.indeterminate
        };
        bits.contains(slot)
    }
}

/// A fixed pseudo-random 64-bit value per slot (splitmix64 of the index).
fn zobrist(slot: usize) -> u64 {
    let mut z = (slot as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One (determinate set, state) seen, with the minimal indeterminate sets seen with it.
struct Seen {
    determinate: Bits,
    masks: Vec<Bits>,
}

/// Configurations explored so far.
#[derive(Default)]
pub(super) struct Memo {
    seen: HashMap<(u64, u32), Vec<Seen>>,
    entries: usize,
}

impl Memo {
    /// Records the configuration and returns `true`, or returns `false` if it (or one that
    /// dominates it) was seen before.
    pub(super) fn visit(&mut self, lin: &Linearized, state: u32) -> bool {
        let bucket = self.seen.entry((lin.hash, state)).or_default();
        let Some(found) = bucket.iter_mut().find(|s| s.determinate == lin.determinate) else {
            bucket.push(Seen {
                determinate: lin.determinate.clone(),
                masks: vec![lin.indeterminate.clone()],
            });
            self.entries += 1;
            return true;
        };
        let masks = &mut found.masks;
        if masks.iter().any(|m| m.is_subset(&lin.indeterminate.0)) {
            return false;
        }
        let before = masks.len();
        masks.retain(|m| !lin.indeterminate.is_subset(&m.0));
        masks.push(lin.indeterminate.clone());
        self.entries = self.entries + masks.len() - before;
        true
    }

    /// Configurations remembered.
    pub(super) fn len(&self) -> usize {
        self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_using_more_indeterminate_operations_is_dominated() {
        let mut memo = Memo::default();
        let lin = |det: &[usize], indet: &[usize]| {
            let mut lin = Linearized::new(3, 70);
            det.iter().for_each(|&i| lin.set(true, i, true));
            indet.iter().for_each(|&i| lin.set(false, i, true));
            lin
        };
        assert!(memo.visit(&lin(&[1], &[65]), 1));
        assert!(!memo.visit(&lin(&[1], &[65]), 1), "same configuration");
        assert!(!memo.visit(&lin(&[1], &[3, 65]), 1), "a superset");
        assert!(memo.visit(&lin(&[1], &[3, 65]), 2), "another state");
        assert!(memo.visit(&lin(&[0, 1], &[65]), 1), "another set");
        assert!(memo.visit(&lin(&[1], &[]), 1), "a subset");
        assert_eq!(memo.len(), 3, "the subset replaced its superset");
        assert!(
            !memo.visit(&lin(&[1], &[3]), 1),
            "dominated by the empty set"
        );
        assert!(memo.visit(&lin(&[1], &[65]), 4));
        assert!(
            memo.visit(&lin(&[1], &[3]), 4),
            "incomparable sets are both kept"
        );
        assert!(!memo.visit(&lin(&[1], &[3, 65]), 4));
        assert_eq!(memo.len(), 5);
        let mut removed = lin(&[1, 2], &[3]);
        removed.set(true, 2, false);
        removed.set(false, 3, false);
        assert!(
            !memo.visit(&removed, 1),
            "removal restores the set and its hash"
        );
    }
}
