//! Version vectors: which writes of each region a version has seen.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Hlc, RegionId};

/// For each region, the timestamp of the newest write of that region a version has seen (for
/// one key). A missing region means nothing seen, the same as [`Hlc::default`]; [`with`] and
/// [`merged`] never store such zero entries, so equal vectors are also `==`.
///
/// [`with`]: VersionVector::with
/// [`merged`]: VersionVector::merged
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VersionVector(pub BTreeMap<RegionId, Hlc>);

/// How one version vector relates to another (`self` relative to `other`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Causality {
    /// Both have seen exactly the same writes.
    Equal,
    /// `self` has seen less: `other` includes everything `self` has seen, and more.
    Before,
    /// `self` has seen more: it includes everything `other` has seen, and more.
    After,
    /// Each has seen a write the other has not: concurrent.
    Concurrent,
}

impl VersionVector {
    /// The entry of `region` (zero if absent).
    pub fn get(&self, region: &str) -> Hlc {
        self.0.get(region).copied().unwrap_or_default()
    }

    /// How `self` relates to `other`, entry by entry (absent entries count as zero).
    pub fn compare(&self, other: &VersionVector) -> Causality {
        let mut less = false;
        let mut greater = false;
        for region in self.0.keys().chain(other.0.keys()) {
            match self.get(region).cmp(&other.get(region)) {
                Ordering::Less => less = true,
                Ordering::Greater => greater = true,
                Ordering::Equal => {}
            }
            if less && greater {
                return Causality::Concurrent;
            }
        }
        match (less, greater) {
            (false, false) => Causality::Equal,
            (true, false) => Causality::Before,
            (false, true) => Causality::After,
            (true, true) => Causality::Concurrent,
        }
    }

    /// Whether `self` has seen everything `other` has ([`Causality::After`] or [`Causality::Equal`]).
    pub fn dominates_or_equals(&self, other: &VersionVector) -> bool {
        matches!(self.compare(other), Causality::After | Causality::Equal)
    }

    /// The pointwise maximum of both: everything either has seen.
    pub fn merged(&self, other: &VersionVector) -> VersionVector {
        let mut merged = self.clone();
        for (region, hlc) in &other.0 {
            merged.raise(region, *hlc);
        }
        merged
    }

    /// A copy with `region`'s entry set to the greater of the existing entry and `hlc`.
    pub fn with(&self, region: &str, hlc: Hlc) -> VersionVector {
        let mut vector = self.clone();
        vector.raise(region, hlc);
        vector
    }

    /// Sets `region`'s entry to the greater of the existing entry and `hlc` (no zero entries).
    fn raise(&mut self, region: &str, hlc: Hlc) {
        if hlc == Hlc::default() {
            return;
        }
        match self.0.get_mut(region) {
            Some(existing) => *existing = (*existing).max(hlc),
            None => {
                self.0.insert(region.to_string(), hlc);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hlc(physical_ms: u64) -> Hlc {
        Hlc {
            physical_ms,
            logical: 0,
        }
    }

    fn vv(entries: &[(&str, u64)]) -> VersionVector {
        VersionVector(
            entries
                .iter()
                .map(|(region, ms)| (region.to_string(), hlc(*ms)))
                .collect(),
        )
    }

    #[test]
    fn compare_covers_the_four_relations() {
        let a = vv(&[("a", 1), ("b", 2)]);
        assert_eq!(a.compare(&a.clone()), Causality::Equal);
        assert_eq!(a.compare(&vv(&[("a", 1), ("b", 3)])), Causality::Before);
        assert_eq!(a.compare(&vv(&[("a", 1)])), Causality::After);
        assert_eq!(a.compare(&vv(&[("a", 2), ("b", 1)])), Causality::Concurrent);
        assert_eq!(a.compare(&vv(&[("c", 1)])), Causality::Concurrent);
    }

    #[test]
    fn absent_entries_count_as_zero() {
        let explicit_zero = VersionVector(
            [("a".to_string(), hlc(1)), ("b".to_string(), Hlc::default())]
                .into_iter()
                .collect(),
        );
        assert_eq!(explicit_zero.compare(&vv(&[("a", 1)])), Causality::Equal);
        assert_eq!(VersionVector::default().compare(&vv(&[])), Causality::Equal);
        assert_eq!(
            VersionVector::default().compare(&vv(&[("a", 1)])),
            Causality::Before
        );
    }

    #[test]
    fn merged_is_the_pointwise_maximum() {
        let merged = vv(&[("a", 3), ("b", 1)]).merged(&vv(&[("b", 2), ("c", 5)]));
        assert_eq!(merged, vv(&[("a", 3), ("b", 2), ("c", 5)]));
        assert_eq!(
            merged,
            vv(&[("b", 2), ("c", 5)]).merged(&vv(&[("a", 3), ("b", 1)]))
        );
    }

    #[test]
    fn with_never_lowers_an_entry_and_stores_no_zero() {
        let v = vv(&[("a", 3)]);
        assert_eq!(v.with("a", hlc(2)), v);
        assert_eq!(v.with("a", hlc(4)), vv(&[("a", 4)]));
        assert_eq!(v.with("b", hlc(1)), vv(&[("a", 3), ("b", 1)]));
        assert_eq!(v.with("b", Hlc::default()), v);
    }

    #[test]
    fn dominates_or_equals_is_after_or_equal() {
        let a = vv(&[("a", 1), ("b", 1)]);
        assert!(a.dominates_or_equals(&a));
        assert!(a.dominates_or_equals(&vv(&[("a", 1)])));
        assert!(!a.dominates_or_equals(&vv(&[("c", 1)])));
        assert!(!vv(&[("a", 1)]).dominates_or_equals(&a));
    }
}
