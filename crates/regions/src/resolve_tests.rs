//! Hand-made cases of each conflict rule of [`super::resolve`].

use std::sync::Arc;

use bytes::Bytes;

use super::*;

fn hlc(physical_ms: u64, logical: u32) -> Hlc {
    Hlc {
        physical_ms,
        logical,
    }
}

/// A write of `value` (None: delete) in `origin` at `(ms, logical)` that has seen the writes of
/// `seen` (region, ms) besides itself.
fn write(origin: &str, at: (u64, u32), value: Option<&str>, seen: &[(&str, u64)]) -> Version {
    let own = hlc(at.0, at.1);
    let vector = seen
        .iter()
        .fold(VersionVector::default(), |acc, (region, ms)| {
            acc.with(region, hlc(*ms, 0))
        })
        .with(origin, own);
    Version {
        value: value.map(|v| Bytes::from(v.to_string())),
        hlc: own,
        origin: origin.to_string(),
        vector,
    }
}

fn policy(strategy: &str) -> ConflictPolicy {
    ConflictPolicy {
        default: strategy.parse().expect("strategy"),
        prefixes: Default::default(),
    }
}

fn apply(stored: Option<&Versions>, incoming: &Version, strategy: &str) -> Outcome {
    apply_with(stored, incoming, strategy, None)
}

fn apply_with(
    stored: Option<&Versions>,
    incoming: &Version,
    strategy: &str,
    primary: Option<&str>,
) -> Outcome {
    let resolvers = Resolvers::with_builtins();
    let ctx = ResolveContext {
        primary,
        resolvers: &resolvers,
    };
    apply_remote(stored, incoming.clone(), "k", &policy(strategy), &ctx)
}

/// The stored versions after `outcome` (unchanged if obsolete).
fn after(stored: Option<Versions>, outcome: Outcome) -> Option<Versions> {
    match outcome {
        Outcome::Applied(versions) | Outcome::Conflict { versions, .. } => Some(versions),
        Outcome::Obsolete => stored,
    }
}

/// Applies `writes` in order from nothing, returning what is stored.
fn apply_all(writes: &[&Version], strategy: &str, primary: Option<&str>) -> Versions {
    let mut stored = None;
    for incoming in writes {
        let outcome = apply_with(stored.as_ref(), incoming, strategy, primary);
        stored = after(stored, outcome);
    }
    stored.expect("something was applied")
}

fn conflict(outcome: Outcome) -> (Versions, String, bool) {
    match outcome {
        Outcome::Conflict {
            versions,
            strategy,
            failed,
        } => (versions, strategy, failed),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn text(value: Option<&Bytes>) -> Option<&str> {
    value.map(|v| std::str::from_utf8(v).expect("utf-8"))
}

#[test]
fn a_first_version_is_applied() {
    let a = write("a", (10, 0), Some("x"), &[]);
    assert_eq!(
        apply(None, &a, "latest-timestamp"),
        Outcome::Applied(Versions::single(a))
    );
}

#[test]
fn a_version_that_has_seen_the_stored_one_replaces_it_without_conflict() {
    let a = write("a", (10, 0), Some("old"), &[]);
    let b = write("b", (5, 0), Some("new"), &[("a", 10)]);
    for strategy in [
        "latest-timestamp",
        "lww-register",
        "multi-value",
        "custom:max",
    ] {
        assert_eq!(
            apply(Some(&Versions::single(a.clone())), &b, strategy),
            Outcome::Applied(Versions::single(b.clone())),
            "{strategy}: an older timestamp that has seen the stored write still wins"
        );
    }
}

#[test]
fn a_superseded_or_repeated_version_is_obsolete() {
    let a = write("a", (10, 0), Some("old"), &[]);
    let b = write("b", (20, 0), Some("new"), &[("a", 10)]);
    let stored = Versions::single(b.clone());
    assert_eq!(
        apply(Some(&stored), &a, "latest-timestamp"),
        Outcome::Obsolete
    );
    assert_eq!(
        apply(Some(&stored), &b, "latest-timestamp"),
        Outcome::Obsolete
    );
}

#[test]
fn latest_timestamp_keeps_the_greater_hlc_and_merges_the_vectors() {
    let a = write("a", (10, 3), Some("from-a"), &[]);
    let b = write("b", (10, 2), Some("from-b"), &[]);
    let (versions, strategy, failed) = conflict(apply(
        Some(&Versions::single(b.clone())),
        &a,
        "latest-timestamp",
    ));
    assert_eq!((strategy.as_str(), failed), ("latest-timestamp", false));
    assert_eq!(text(versions.current()), Some("from-a"));
    let winner = versions.winner().expect("one version");
    assert_eq!((winner.hlc, winner.origin.as_str()), (hlc(10, 3), "a"));
    assert_eq!(winner.vector, a.vector.merged(&b.vector));
    assert_eq!(versions.resolved_from, [b, a], "canonical order");
    assert!(!versions.has_siblings());
}

#[test]
fn latest_timestamp_breaks_equal_timestamps_by_origin_id() {
    let a = write("a", (10, 0), Some("from-a"), &[]);
    let b = write("b", (10, 0), Some("from-b"), &[]);
    for order in [[&a, &b], [&b, &a]] {
        let versions = apply_all(&order, "latest-timestamp", None);
        assert_eq!(text(versions.current()), Some("from-b"));
    }
}

#[test]
fn lww_register_compares_milliseconds_then_primary_then_origin() {
    // Same millisecond: the logical counter does not count, the primary region wins.
    let a = write("a", (10, 7), Some("from-a"), &[]);
    let b = write("b", (10, 0), Some("from-b"), &[]);
    let c = write("c", (10, 1), Some("from-c"), &[]);
    let winner = |primary| {
        let versions = apply_all(&[&a, &b, &c], "lww-register", primary);
        text(versions.current()).map(str::to_string)
    };
    assert_eq!(winner(Some("a")).as_deref(), Some("from-a"));
    assert_eq!(winner(Some("b")).as_deref(), Some("from-b"));
    assert_eq!(winner(None).as_deref(), Some("from-c"), "then origin id");
    // A later millisecond wins over the primary.
    let late = write("z", (11, 0), Some("late"), &[]);
    let versions = apply_all(&[&a, &late], "lww-register", Some("a"));
    assert_eq!(text(versions.current()), Some("late"));
    let (_, strategy, _) = conflict(apply(
        Some(&Versions::single(a.clone())),
        &late,
        "lww-register",
    ));
    assert_eq!(strategy, "lww-register");
}

#[test]
fn multi_value_keeps_concurrent_siblings_in_canonical_order() {
    let a = write("a", (10, 0), Some("from-a"), &[]);
    let b = write("b", (12, 0), None, &[]);
    let (versions, strategy, failed) =
        conflict(apply(Some(&Versions::single(b.clone())), &a, "multi-value"));
    assert_eq!((strategy.as_str(), failed), ("multi-value", false));
    assert_eq!(versions.siblings, [a.clone(), b.clone()]);
    assert!(versions.has_siblings());
    assert!(!versions.is_resolved());
    assert_eq!(
        versions.current(),
        None,
        "the greatest sibling is a tombstone"
    );
    assert_eq!(versions.vector(), a.vector.merged(&b.vector));
}

#[test]
fn a_version_drops_the_siblings_it_has_seen_and_conflicts_with_the_others() {
    let a = write("a", (10, 0), Some("a1"), &[]);
    let b = write("b", (11, 0), Some("b1"), &[]);
    let c = write("c", (12, 0), Some("c1"), &[]);
    let stored = apply_all(&[&a, &b, &c], "multi-value", None);
    assert_eq!(stored.siblings.len(), 3);
    // Has seen a and b, not c.
    let d = write("d", (13, 0), Some("d1"), &[("a", 10), ("b", 11)]);
    let (versions, _, _) = conflict(apply(Some(&stored), &d, "multi-value"));
    assert_eq!(versions.siblings, [c.clone(), d.clone()]);
    // Has seen all: replaces them, no conflict.
    let e = write("e", (1, 0), Some("e1"), &[("a", 10), ("b", 11), ("c", 12)]);
    assert_eq!(
        apply(Some(&stored), &e, "multi-value"),
        Outcome::Applied(Versions::single(e.clone()))
    );
    // One sibling has seen it: obsolete.
    let old_c = write("c", (5, 0), Some("c0"), &[]);
    assert_eq!(
        apply(Some(&stored), &old_c, "multi-value"),
        Outcome::Obsolete
    );
}

#[test]
fn a_local_write_supersedes_every_sibling_everywhere() {
    let a = write("a", (10, 0), Some("a1"), &[]);
    let b = write("b", (11, 0), Some("b1"), &[]);
    for strategy in ["multi-value", "latest-timestamp", "custom:union"] {
        let stored = apply_all(&[&a, &b], strategy, None);
        let local = local_write(Some(&stored), Some(Bytes::from("mine")), "c", hlc(12, 0));
        assert_eq!(local.origin, "c");
        assert_eq!(local.hlc, hlc(12, 0));
        assert_eq!(local.vector, stored.vector().with("c", hlc(12, 0)));
        assert_eq!(local.vector.compare(&a.vector), Causality::After);
        assert_eq!(local.vector.compare(&b.vector), Causality::After);
        // Another region holding the same conflict applies it without a conflict.
        assert_eq!(
            apply(Some(&stored), &local, strategy),
            Outcome::Applied(Versions::single(local.clone())),
            "{strategy}"
        );
    }
}

#[test]
fn a_local_delete_is_a_tombstone_version() {
    let a = write("a", (10, 0), Some("a1"), &[]);
    let delete = local_write(Some(&Versions::single(a.clone())), None, "b", hlc(11, 0));
    assert!(delete.is_tombstone());
    assert_eq!(delete.vector.compare(&a.vector), Causality::After);
    let first = local_write(None, Some(Bytes::from("x")), "a", hlc(1, 0));
    assert_eq!(first.vector, VersionVector::default().with("a", hlc(1, 0)));
}

#[test]
fn custom_merge_combines_values_with_the_greatest_timestamp_and_origin() {
    let a = write("a", (10, 0), Some("7"), &[]);
    let b = write("b", (9, 0), Some("12"), &[]);
    let (versions, strategy, failed) =
        conflict(apply(Some(&Versions::single(a.clone())), &b, "custom:max"));
    assert_eq!((strategy.as_str(), failed), ("custom:max", false));
    assert_eq!(text(versions.current()), Some("12"));
    let resolved = versions.winner().expect("one version");
    assert_eq!((resolved.hlc, resolved.origin.as_str()), (hlc(10, 0), "a"));
    assert_eq!(resolved.vector, a.vector.merged(&b.vector));

    let c = write("c", (8, 0), Some("[3,1]"), &[]);
    let d = write("d", (8, 0), Some("[2,3]"), &[]);
    let versions = apply_all(&[&c, &d], "custom:union", None);
    assert_eq!(text(versions.current()), Some("[1,2,3]"));
    let (versions, _, failed) = conflict(apply(Some(&Versions::single(c)), &d, "custom:min"));
    assert!(failed, "JSON arrays are not numbers");
    assert_eq!(
        text(versions.current()),
        Some("[2,3]"),
        "latest-timestamp: d > c"
    );
}

#[test]
fn custom_merge_falls_back_to_latest_timestamp_as_failed() {
    let number = write("a", (10, 0), Some("7"), &[]);
    let tombstone = write("b", (11, 0), None, &[]);
    let text_value = write("c", (12, 0), Some("seven"), &[]);
    let older_text = write("c", (9, 0), Some("seven"), &[]);
    let stored = Versions::single(number.clone());
    let cases = [
        (&tombstone, "custom:max", None),
        (&text_value, "custom:max", Some("seven")),
        (&older_text, "custom:max", Some("7")),
        (&text_value, "custom:no-such-resolver", Some("seven")),
    ];
    for (incoming, strategy, expected) in cases {
        let (versions, reported, failed) = conflict(apply(Some(&stored), incoming, strategy));
        assert!(failed, "{strategy} with {incoming:?}");
        assert_eq!(reported, strategy);
        assert_eq!(
            text(versions.current()),
            expected,
            "{strategy} with {incoming:?}"
        );
    }
}

#[test]
fn the_key_prefix_picks_the_strategy() {
    let a = write("a", (10, 0), Some("1"), &[]);
    let b = write("b", (11, 0), Some("2"), &[]);
    let policy = ConflictPolicy {
        default: Strategy::LatestTimestamp,
        prefixes: [("cart/".to_string(), Strategy::MultiValue)]
            .into_iter()
            .collect(),
    };
    let resolvers = Resolvers::with_builtins();
    let ctx = ResolveContext {
        primary: None,
        resolvers: &resolvers,
    };
    let stored = Versions::single(a);
    let (in_cart, strategy, _) = conflict(apply_remote(
        Some(&stored),
        b.clone(),
        "cart/1",
        &policy,
        &ctx,
    ));
    assert_eq!(strategy, "multi-value");
    assert!(in_cart.has_siblings());
    let (other, strategy, _) = conflict(apply_remote(Some(&stored), b, "user/1", &policy, &ctx));
    assert_eq!(strategy, "latest-timestamp");
    assert!(!other.has_siblings());
}

#[test]
fn resolution_does_not_depend_on_the_order_given() {
    let a = write("a", (10, 0), Some("[1]"), &[]);
    let b = write("b", (10, 0), Some("[2]"), &[]);
    let c = write("c", (9, 5), Some("[3]"), &[]);
    let resolvers = Resolvers::with_builtins();
    let ctx = ResolveContext {
        primary: Some("b"),
        resolvers: &resolvers,
    };
    for strategy in [
        Strategy::LatestTimestamp,
        Strategy::LwwRegister,
        Strategy::MultiValue,
        Strategy::Custom("union".to_string()),
    ] {
        let one = resolve_concurrent(vec![a.clone(), b.clone(), c.clone()], "k", &strategy, &ctx);
        let other = resolve_concurrent(vec![c.clone(), a.clone(), b.clone()], "k", &strategy, &ctx);
        assert_eq!(one, other, "{strategy}");
    }
}

/// Writes a1 and b1 are concurrent; c1 has seen a1 (and lowered the value) but not b1.
fn seen_one_of_two() -> (Version, Version, Version) {
    let a1 = write("a", (10, 0), Some("10"), &[]);
    let b1 = write("b", (10, 0), Some("7"), &[]);
    let c1 = write("c", (10, 1), Some("5"), &[("a", 10)]);
    (a1, b1, c1)
}

#[test]
fn a_write_that_supersedes_part_of_a_resolved_conflict_is_resolved_again_without_it() {
    // Region X receives a1, b1 (conflict: max 10), then c1; region Y receives a1, c1 (c1
    // replaces a1), then b1. Both must end with max(c1, b1) = 7: a1 was overwritten by c1.
    let (a1, b1, c1) = seen_one_of_two();
    let x = apply_all(&[&a1, &b1, &c1], "custom:max", None);
    let y = apply_all(&[&a1, &c1, &b1], "custom:max", None);
    let z = apply_all(&[&c1, &b1, &a1], "custom:max", None);
    assert_eq!(text(x.current()), Some("7"));
    assert_eq!(x, y);
    assert_eq!(x, z);
    assert_eq!(x.resolved_from, [b1, c1]);
}

#[test]
fn known_bad_a_single_merged_version_without_what_it_was_made_of_diverges() {
    // What region X would hold if a resolved conflict kept only the merged version: then c1
    // meets "10" (a1's value, which c1 overwrote) and max keeps it, while region Y, which saw
    // c1 replace a1 before b1 arrived, holds 7. This is why `resolved_from` exists.
    let (a1, b1, c1) = seen_one_of_two();
    let x = apply_all(&[&a1, &b1], "custom:max", None);
    let merged_only = Versions::single(x.siblings[0].clone());
    let x_naive = after(
        Some(merged_only.clone()),
        apply(Some(&merged_only), &c1, "custom:max"),
    )
    .expect("stored");
    let y = apply_all(&[&a1, &c1, &b1], "custom:max", None);
    assert_eq!(text(x_naive.current()), Some("10"));
    assert_eq!(text(y.current()), Some("7"));
    assert_eq!(x_naive.vector(), y.vector(), "same writes seen ...");
    assert_ne!(
        x_naive.current(),
        y.current(),
        "... different values: diverged"
    );
}

#[test]
fn lww_register_converges_when_a_later_write_loses_the_primary_tie_to_what_it_overwrote() {
    // a is primary; c1 overwrote a1 in the same millisecond; b1 is concurrent with both.
    let (a1, b1, c1) = seen_one_of_two();
    let x = apply_all(&[&a1, &b1, &c1], "lww-register", Some("a"));
    let y = apply_all(&[&a1, &c1, &b1], "lww-register", Some("a"));
    assert_eq!(x, y);
    assert_eq!(
        text(x.current()),
        Some("5"),
        "c1 beats b1 by origin id; a1 is gone"
    );
}

#[test]
fn re_delivering_a_version_of_a_resolved_conflict_is_obsolete() {
    let (a1, b1, _) = seen_one_of_two();
    for strategy in [
        "latest-timestamp",
        "lww-register",
        "multi-value",
        "custom:max",
    ] {
        let stored = apply_all(&[&a1, &b1], strategy, None);
        assert_eq!(apply(Some(&stored), &a1, strategy), Outcome::Obsolete);
        assert_eq!(apply(Some(&stored), &b1, strategy), Outcome::Obsolete);
    }
}

#[test]
fn a_deterministic_but_non_commutative_resolver_still_converges() {
    // "keep the first" is not commutative, but conflicts are always folded over the same set
    // in the same canonical order, so every region computes the same value.
    let mut resolvers = Resolvers::with_builtins();
    resolvers.register(
        "first",
        Arc::new(|_: &str, a: &Bytes, _: &Bytes| Some(a.clone())),
    );
    let ctx = ResolveContext {
        primary: None,
        resolvers: &resolvers,
    };
    let policy = policy("custom:first");
    let (a1, b1, c1) = seen_one_of_two();
    let run = |order: &[&Version]| {
        let mut stored: Option<Versions> = None;
        for incoming in order {
            let outcome = apply_remote(stored.as_ref(), (*incoming).clone(), "k", &policy, &ctx);
            stored = after(stored, outcome);
        }
        stored
    };
    let x = run(&[&a1, &b1, &c1]);
    assert_eq!(x, run(&[&c1, &b1, &a1]));
    assert_eq!(x, run(&[&b1, &a1, &c1]));
    assert_eq!(x.as_ref().and_then(|v| text(v.current())), Some("7"));
}

#[test]
fn stats_count_conflicts_by_strategy_and_failures() {
    let a = write("a", (10, 0), Some("1"), &[]);
    let b = write("b", (11, 0), None, &[]);
    let later = write("c", (12, 0), Some("2"), &[("a", 10), ("b", 11)]);
    let stored_a = Versions::single(a.clone());
    let mut stats = ConflictStats::default();
    stats.record(&apply(None, &a, "custom:max"));
    stats.record(&apply(Some(&stored_a), &a, "custom:max"));
    stats.record(&apply(Some(&stored_a), &later, "custom:max"));
    assert_eq!(
        stats,
        ConflictStats::default(),
        "applied and obsolete are no conflicts"
    );
    stats.record(&apply(Some(&stored_a), &b, "custom:max"));
    stats.record(&apply(Some(&stored_a), &b, "multi-value"));
    stats.record(&apply(Some(&stored_a), &b, "multi-value"));
    assert_eq!(stats.total, 3);
    assert_eq!(stats.failed, 1);
    assert_eq!(
        stats.by_strategy.into_iter().collect::<Vec<_>>(),
        [
            ("custom:max".to_string(), 1),
            ("multi-value".to_string(), 2)
        ]
    );
}
