//! The versions of a key: one write (or tombstone), or several concurrent ones.

use std::cmp::Ordering;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{check_region_id, Hlc, RegionId, VersionVector};

/// One version of a key: a value or a tombstone (`value: None`), written in region `origin` at
/// `hlc`, having seen the writes in `vector` (which includes `origin` at `hlc` itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// The value, or `None` for a delete (tombstone).
    pub value: Option<Bytes>,
    /// When it was written (or, for a resolved conflict, the winner's timestamp).
    pub hlc: Hlc,
    /// The region it was written in (or, for a resolved conflict, the winner's region).
    pub origin: RegionId,
    /// The writes of each region it has seen, for this key.
    pub vector: VersionVector,
}

impl Version {
    /// Whether this version is a delete.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// Checks a version as a region ships it (one of its own writes, from the network, before
    /// [`super::apply_remote`]): a valid origin and region names, a non-zero timestamp, and a
    /// vector whose entry for the origin is that timestamp (a write has seen itself). The error
    /// says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        check_region_id(&self.origin).map_err(|e| format!("version origin: {e}"))?;
        if self.hlc == Hlc::default() {
            return Err("version timestamp is zero".to_string());
        }
        if let Some(bad) = self.vector.0.keys().find(|r| check_region_id(r).is_err()) {
            return Err(format!("version vector names an invalid region {bad:?}"));
        }
        let own = self.vector.get(&self.origin);
        if own != self.hlc {
            return Err(format!(
                "version of {} at {:?} has {:?} for its own region in its vector",
                self.origin, self.hlc, own
            ));
        }
        Ok(())
    }

    /// The canonical order of versions: by `(hlc, origin)`, then (only for versions that claim
    /// the same write, which consistent regions never produce) by vector and value, so that the
    /// order is total and every region sorts the same set identically.
    pub fn canonical_cmp(&self, other: &Version) -> Ordering {
        (self.hlc, &self.origin, &self.vector, &self.value).cmp(&(
            other.hlc,
            &other.origin,
            &other.vector,
            &other.value,
        ))
    }
}

/// The versions of one key.
///
/// `siblings` is what a read shows: one version, or several concurrent siblings (multi-value),
/// in canonical order ([`Version::canonical_cmp`]) so that equal sets compare and encode equal.
///
/// When a conflict was resolved to one version (every strategy but multi-value), `siblings` holds
/// that one resolved version and `resolved_from` the concurrent versions it was resolved from
/// (at least two, canonical order; empty otherwise). They are kept because a later write may
/// supersede some of them but not the others, and the conflict must then be resolved again
/// without the superseded ones for every region to converge: a single merged version cannot
/// tell what it was made of (see `docs/regions-design.md`, "Resolution keeps the concurrent
/// versions"). A region has at most one of them per region, since a region's writes of a key
/// each see the previous one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions {
    /// What a read shows: one version, or the concurrent siblings of a multi-value conflict.
    pub siblings: Vec<Version>,
    /// The concurrent versions a resolved conflict was resolved from (empty if not resolved).
    #[serde(default)]
    pub resolved_from: Vec<Version>,
}

impl Versions {
    /// One version, no conflict.
    pub fn single(v: Version) -> Versions {
        Versions {
            siblings: vec![v],
            resolved_from: Vec::new(),
        }
    }

    /// Versions shown as they are (multi-value), sorted canonically and without duplicates.
    pub fn from_siblings(mut siblings: Vec<Version>) -> Versions {
        siblings.sort_by(Version::canonical_cmp);
        siblings.dedup();
        Versions {
            siblings,
            resolved_from: Vec::new(),
        }
    }

    /// The version a plain GET shows: the greatest `(hlc, origin)` sibling (the resolved version
    /// if the conflict was resolved). `None` only if there are no siblings at all.
    pub fn winner(&self) -> Option<&Version> {
        self.siblings.iter().max_by(|a, b| a.canonical_cmp(b))
    }

    /// The value a plain GET shows: the value of the greatest `(hlc, origin)` sibling; `None` if
    /// that is a tombstone.
    pub fn current(&self) -> Option<&Bytes> {
        self.winner().and_then(|v| v.value.as_ref())
    }

    /// The pointwise maximum of all siblings' vectors: everything the stored versions have seen.
    pub fn vector(&self) -> VersionVector {
        self.siblings
            .iter()
            .chain(&self.resolved_from)
            .fold(VersionVector::default(), |acc, v| acc.merged(&v.vector))
    }

    /// Whether a read shows several concurrent values (an unresolved multi-value conflict).
    pub fn has_siblings(&self) -> bool {
        self.siblings.len() > 1
    }

    /// Whether `siblings` holds the resolution of a conflict between `resolved_from`.
    pub fn is_resolved(&self) -> bool {
        !self.resolved_from.is_empty()
    }

    /// The concurrent versions that were written (none has seen another): `resolved_from` for a
    /// resolved conflict, otherwise the siblings. A new write is compared with these.
    pub fn concurrent(&self) -> &[Version] {
        if self.resolved_from.is_empty() {
            &self.siblings
        } else {
            &self.resolved_from
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(value: Option<&str>, ms: u64, origin: &str) -> Version {
        let hlc = Hlc {
            physical_ms: ms,
            logical: 0,
        };
        Version {
            value: value.map(|v| Bytes::from(v.to_string())),
            hlc,
            origin: origin.to_string(),
            vector: VersionVector::default().with(origin, hlc),
        }
    }

    #[test]
    fn current_is_the_greatest_hlc_then_origin_sibling() {
        let versions = Versions::from_siblings(vec![
            version(Some("late-b"), 5, "b"),
            version(Some("early"), 1, "c"),
            version(Some("late-a"), 5, "a"),
        ]);
        assert_eq!(versions.current(), Some(&Bytes::from("late-b")));
        assert_eq!(versions.winner().map(|v| v.origin.as_str()), Some("b"));
        let origins: Vec<&str> = versions
            .siblings
            .iter()
            .map(|v| v.origin.as_str())
            .collect();
        assert_eq!(origins, ["c", "a", "b"], "canonical order");
        assert!(versions.has_siblings());
    }

    #[test]
    fn current_is_none_for_a_winning_tombstone_or_nothing() {
        let versions =
            Versions::from_siblings(vec![version(Some("old"), 1, "a"), version(None, 2, "b")]);
        assert_eq!(versions.current(), None);
        let nothing = Versions::from_siblings(Vec::new());
        assert_eq!(nothing.current(), None);
        assert_eq!(nothing.vector(), VersionVector::default());
        assert!(!nothing.has_siblings());
    }

    #[test]
    fn from_siblings_sorts_and_deduplicates_so_equal_sets_are_equal() {
        let a = version(Some("x"), 1, "a");
        let b = version(Some("y"), 2, "b");
        assert_eq!(
            Versions::from_siblings(vec![a.clone(), b.clone(), a.clone()]),
            Versions::from_siblings(vec![b, a])
        );
    }

    #[test]
    fn vector_is_the_pointwise_maximum_of_the_siblings() {
        let versions =
            Versions::from_siblings(vec![version(Some("x"), 3, "a"), version(Some("y"), 2, "b")]);
        let vector = versions.vector();
        assert_eq!(vector.get("a").physical_ms, 3);
        assert_eq!(vector.get("b").physical_ms, 2);
        assert_eq!(vector.0.len(), 2);
    }

    #[test]
    fn concurrent_is_resolved_from_when_resolved_else_the_siblings() {
        let a = version(Some("x"), 3, "a");
        let b = version(Some("y"), 2, "b");
        let plain = Versions::single(a.clone());
        assert_eq!(plain.concurrent(), std::slice::from_ref(&a));
        assert!(!plain.is_resolved());
        let resolved = Versions {
            siblings: vec![a.clone()],
            resolved_from: vec![b.clone(), a.clone()],
        };
        assert_eq!(resolved.concurrent(), &[b, a][..]);
        assert!(resolved.is_resolved());
        assert!(!resolved.has_siblings());
    }

    #[test]
    fn validate_accepts_a_write_and_refuses_inconsistent_ones() {
        let good = version(Some("x"), 3, "eu-west");
        assert_eq!(good.validate(), Ok(()));
        let bad_origin = Version {
            origin: "eu west".to_string(),
            ..good.clone()
        };
        assert!(bad_origin.validate().unwrap_err().contains("origin"));
        let zero = Version {
            hlc: Hlc::default(),
            vector: VersionVector::default(),
            ..good.clone()
        };
        assert!(zero.validate().unwrap_err().contains("zero"));
        let not_seen_itself = Version {
            vector: VersionVector::default(),
            ..good.clone()
        };
        assert!(not_seen_itself
            .validate()
            .unwrap_err()
            .contains("own region"));
        let bad_entry = Version {
            vector: good.vector.with("a/b", good.hlc),
            ..good
        };
        assert!(bad_entry.validate().unwrap_err().contains("invalid region"));
    }

    #[test]
    fn versions_round_trip_through_the_storage_codec_and_json() {
        let a = version(Some("x"), 3, "a");
        let b = version(None, 2, "b");
        let resolved = Versions {
            siblings: vec![Version {
                vector: a.vector.merged(&b.vector),
                ..a.clone()
            }],
            resolved_from: vec![b.clone(), a.clone()],
        };
        for versions in [
            Versions::single(a.clone()),
            Versions::from_siblings(vec![a, b]),
            resolved,
        ] {
            let encoded = crate::wire::encode(&versions).expect("encodes");
            let decoded: Versions = crate::wire::decode(&encoded).expect("decodes");
            assert_eq!(decoded, versions);
            let json = serde_json::to_string(&versions).expect("to JSON");
            assert_eq!(
                serde_json::from_str::<Versions>(&json).expect("from JSON"),
                versions
            );
        }
    }
}
