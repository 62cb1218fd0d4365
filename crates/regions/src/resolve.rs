//! The conflict rules: what a region stores when a write arrives, local or remote.

use bytes::Bytes;

use super::{
    Causality, ConflictPolicy, Hlc, Resolvers, Strategy, Version, VersionVector, Versions,
};

/// What resolving a conflict needs besides the versions: the same in every region.
#[derive(Clone, Copy, Debug)]
pub struct ResolveContext<'a> {
    /// The primary region, which wins `lww-register` ties (`None`: no region wins ties).
    pub primary: Option<&'a str>,
    /// The resolvers of `custom:NAME` strategies.
    pub resolvers: &'a Resolvers,
}

/// What applying a remote version did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The incoming version replaces what was stored (no conflict; also when nothing was stored).
    Applied(Versions),
    /// The incoming version is already included or superseded: nothing changes.
    Obsolete,
    /// A conflict, resolved: store `versions`. `strategy` is what resolved it
    /// (`latest-timestamp`, `lww-register`, `multi-value`, `custom:NAME`); `failed`: a custom
    /// merge could not merge and latest-timestamp decided instead.
    Conflict {
        /// What to store for the key.
        versions: Versions,
        /// The key's strategy, in its text form.
        strategy: String,
        /// Whether a custom merge failed and latest-timestamp decided instead.
        failed: bool,
    },
}

/// A version shipped from another region, against what is stored for `key`.
///
/// Decided by version vectors alone, against the concurrent versions stored
/// ([`Versions::concurrent`]): obsolete if one of them has seen everything the incoming version
/// has; otherwise the incoming version drops every one it has seen, and replaces what was stored
/// if none is left; if some are left it is a conflict, resolved by `key`'s strategy over all of
/// them and the incoming one ([`resolve_concurrent`]).
pub fn apply_remote(
    stored: Option<&Versions>,
    incoming: Version,
    key: &str,
    policy: &ConflictPolicy,
    ctx: &ResolveContext,
) -> Outcome {
    let concurrent = stored.map(Versions::concurrent).unwrap_or_default();
    if concurrent
        .iter()
        .any(|v| v.vector.dominates_or_equals(&incoming.vector))
    {
        return Outcome::Obsolete;
    }
    let mut remaining: Vec<Version> = concurrent
        .iter()
        .filter(|v| incoming.vector.compare(&v.vector) != Causality::After)
        .cloned()
        .collect();
    if remaining.is_empty() {
        return Outcome::Applied(Versions::single(incoming));
    }
    remaining.push(incoming);
    let strategy = policy.strategy_for(key);
    let (versions, failed) = resolve_concurrent(remaining, key, strategy, ctx);
    Outcome::Conflict {
        versions,
        strategy: strategy.to_string(),
        failed,
    }
}

/// The version of a new local write (value `None`: delete) in `region` at `hlc`: it has seen
/// everything stored, so its vector is the stored vector with `region` set to `hlc`, and it
/// replaces all siblings.
///
/// `hlc` must come from [`Hlc::tick`] of a region clock that has observed every version
/// applied in the region, so that it is newer than any entry of the stored vector.
pub fn local_write(
    stored: Option<&Versions>,
    value: Option<Bytes>,
    region: &str,
    hlc: Hlc,
) -> Version {
    let seen = stored.map(Versions::vector).unwrap_or_default();
    Version {
        value,
        hlc,
        origin: region.to_string(),
        vector: seen.with(region, hlc),
    }
}

/// Resolves a conflict between `versions` by `strategy`: a deterministic function of the set
/// (whatever the order given), returning what to store and whether a custom merge failed.
///
/// Versions another one has seen are dropped first; if one is left it is stored as it is.
/// `multi-value` keeps them all as siblings. The others fold them, in canonical order, into one
/// version whose vector is the merge of all vectors, stored with `resolved_from` (the versions
/// it was made of): `latest-timestamp` and `lww-register` keep the winner's value, timestamp
/// and origin; `custom:NAME` merges the values pairwise and takes the timestamp and origin of
/// the greatest `(hlc, origin)` version. A custom merge that cannot be done (a tombstone among
/// the versions, an unknown resolver, a resolver answering `None`) falls back to
/// latest-timestamp for the whole set, and reports `failed`.
pub fn resolve_concurrent(
    versions: Vec<Version>,
    key: &str,
    strategy: &Strategy,
    ctx: &ResolveContext,
) -> (Versions, bool) {
    let concurrent = maximal(versions);
    let greatest = match concurrent.as_slice() {
        [_, .., greatest] => greatest.clone(),
        _ => return (Versions::from_siblings(concurrent), false),
    };
    let (winner, failed) = match strategy {
        Strategy::MultiValue => return (Versions::from_siblings(concurrent), false),
        Strategy::LatestTimestamp => (greatest, false),
        Strategy::LwwRegister => (
            lww_winner(&concurrent, ctx.primary).unwrap_or(greatest),
            false,
        ),
        Strategy::Custom(name) => match custom_merge(&concurrent, key, name, ctx.resolvers) {
            Some(value) => (
                Version {
                    value: Some(value),
                    ..greatest
                },
                false,
            ),
            None => (greatest, true),
        },
    };
    let vector = concurrent
        .iter()
        .fold(VersionVector::default(), |acc, v| acc.merged(&v.vector));
    let resolved = Version { vector, ..winner };
    let versions = Versions {
        siblings: vec![resolved],
        resolved_from: concurrent,
    };
    (versions, failed)
}

/// The versions no other one has seen, in canonical order, without duplicates.
fn maximal(versions: Vec<Version>) -> Vec<Version> {
    let Versions { siblings, .. } = Versions::from_siblings(versions);
    siblings
        .iter()
        .filter(|v| {
            !siblings
                .iter()
                .any(|other| other.vector.compare(&v.vector) == Causality::After)
        })
        .cloned()
        .collect()
}

/// The `lww-register` winner: the greatest `(physical_ms, origin is primary, origin)`, ties
/// (only between versions claiming the same region and millisecond) by canonical order.
fn lww_winner(versions: &[Version], primary: Option<&str>) -> Option<Version> {
    let key = |v: &Version| (v.hlc.physical_ms, Some(v.origin.as_str()) == primary);
    versions
        .iter()
        .max_by(|a, b| {
            key(a)
                .cmp(&key(b))
                .then_with(|| a.origin.cmp(&b.origin))
                .then_with(|| a.canonical_cmp(b))
        })
        .cloned()
}

/// The custom merge of all values, folded pairwise in canonical order. `None` if a value is a
/// tombstone, the resolver is unknown or it refuses a pair.
fn custom_merge(
    versions: &[Version],
    key: &str,
    name: &str,
    resolvers: &Resolvers,
) -> Option<Bytes> {
    let resolver = resolvers.get(name)?;
    let mut values = versions.iter().map(|v| v.value.as_ref());
    let first = values.next()??.clone();
    values.try_fold(first, |acc, value| resolver.merge(key, &acc, value?))
}
