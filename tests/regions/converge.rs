//! Property tests (proptest) of multi-region conflict handling (`raftix::regions`): regions that
//! write keys locally and receive each other's writes in any order, duplicated, interleaved
//! with their own writes (so that some writes have seen others), all end with equal versions
//! of every key, for every strategy, and with the versions an independent oracle computes from
//! the set of all writes. Re-delivery changes nothing; a write that has seen what is stored is
//! never a conflict; the conflict statistics are a function of the delivery sequence.
//!
//! `known_bad_*` shows the property can fail: a resolver that is not deterministic (it
//! depends on how many merges its region did) makes the same check find divergent regions.
//!
//! proptest prints the minimal failing case and records its seed in
//! `tests/regions_converge.proptest-regressions`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestError, TestRunner};
use raftix::regions::{
    apply_remote, local_write, Causality, ConflictPolicy, ConflictStats, Hlc, Outcome,
    ResolveContext, Resolvers, Strategy as ConflictStrategy, Version, VersionVector, Versions,
};

/// Region names; the primary is neither the smallest nor the greatest id, so that the primary
/// tie rule of lww-register and the origin id order disagree.
const REGIONS: [&str; 4] = ["eu-west", "us-east", "ap-south", "sa-east"];
const PRIMARY: &str = "eu-west";
const KEYS: [&str; 3] = ["k0", "k1", "k2"];

/// The strategies checked, with the custom resolver `first`: deterministic but not commutative
/// (it keeps its first argument), which converges since conflicts are folded in canonical order.
const STRATEGIES: [&str; 6] = [
    "latest-timestamp",
    "lww-register",
    "multi-value",
    "custom:max",
    "custom:union",
    "custom:first",
];

/// One step of the schedule. Indices are taken modulo the number of regions, keys, writes.
#[derive(Clone, Debug)]
enum Op {
    /// `region` writes (or deletes) `key`, its wall clock advancing by `advance_ms` (0: same
    /// millisecond, so ties in physical time are frequent).
    Write {
        region: usize,
        key: usize,
        value: u8,
        delete: bool,
        advance_ms: u64,
    },
    /// `to` receives write number `pick` of another region (`from`), maybe again.
    Deliver { to: usize, from: usize, pick: usize },
}

/// A generated scenario.
#[derive(Clone, Debug)]
struct Case {
    regions: usize,
    /// Each region's wall clock at the start (skewed, often equal).
    start_ms: Vec<u64>,
    ops: Vec<Op>,
    /// Orders the final phase, which delivers every write to every other region.
    final_order_seed: u64,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..4usize, 0..KEYS.len(), 0u8..12, prop::bool::weighted(0.15), 0u64..3).prop_map(
            |(region, key, value, delete, advance_ms)| Op::Write {
                region,
                key,
                value,
                delete,
                advance_ms,
            }
        ),
        3 => (0..4usize, 0..4usize, 0..64usize)
            .prop_map(|(to, from, pick)| Op::Deliver { to, from, pick }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (2usize..=4, vec(0u64..3, 4), vec(op(), 1..48), any::<u64>()).prop_map(
        |(regions, start_ms, ops, final_order_seed)| Case {
            regions,
            start_ms,
            ops,
            final_order_seed,
        },
    )
}

/// The value text of `n` for a strategy: numbers (and one that is not) for max, JSON arrays
/// (and one that is not) for union, plain text otherwise.
fn value_for(strategy: &str, n: u8) -> Bytes {
    let text = match strategy {
        "custom:max" => match n {
            0..=9 => n.to_string(),
            10 => "1e1".to_string(),
            _ => "ten".to_string(),
        },
        "custom:union" if n == 11 => "not json".to_string(),
        "custom:union" => {
            let elements: Vec<String> = (0..4)
                .filter(|bit| n & (1 << bit) != 0)
                .map(|bit| bit.to_string())
                .collect();
            format!("[{}]", elements.join(", "))
        }
        _ => format!("v{n}"),
    };
    Bytes::from(text)
}

/// One region of the simulation.
struct Region {
    name: &'static str,
    clock: Hlc,
    wall_ms: u64,
    store: BTreeMap<usize, Versions>,
    /// Its own writes, in order: (key index, version).
    outbox: Vec<(usize, Version)>,
    stats: ConflictStats,
    conflicts: u64,
    resolvers: Resolvers,
}

/// The regions after a run.
struct Run {
    regions: Vec<Region>,
}

/// Makes each region's resolvers (called once per region, so a resolver may keep per-region
/// state, as a buggy application's might).
type ResolversFactory<'a> = &'a dyn Fn() -> Resolvers;

fn standard_resolvers() -> Resolvers {
    let mut resolvers = Resolvers::with_builtins();
    resolvers.register(
        "first",
        Arc::new(|_: &str, a: &Bytes, _: &Bytes| Some(a.clone())),
    );
    resolvers
}

impl Region {
    fn ctx(&self) -> ResolveContext<'_> {
        ResolveContext {
            primary: Some(PRIMARY),
            resolvers: &self.resolvers,
        }
    }

    fn write(&mut self, key: usize, value: Option<Bytes>, advance_ms: u64) -> Result<(), String> {
        self.wall_ms += advance_ms;
        self.clock = self.clock.tick(self.wall_ms);
        let stored = self.store.get(&key);
        let version = local_write(stored, value, self.name, self.clock);
        if let Some(stored) = stored {
            if version.vector.compare(&stored.vector()) != Causality::After {
                return Err(format!(
                    "{}: local write {version:?} has not seen {stored:?}",
                    self.name
                ));
            }
        }
        self.store.insert(key, Versions::single(version.clone()));
        self.outbox.push((key, version));
        Ok(())
    }

    /// Applies another region's version, checking the no-conflict rule; returns the outcome.
    fn receive(
        &mut self,
        key: usize,
        version: &Version,
        policy: &ConflictPolicy,
    ) -> Result<Outcome, String> {
        self.clock = self.clock.observe(version.hlc);
        let stored = self.store.get(&key);
        let outcome = apply_remote(stored, version.clone(), KEYS[key], policy, &self.ctx());
        let seen_all = stored.map(|s| version.vector.compare(&s.vector()));
        match (&outcome, seen_all) {
            (Outcome::Applied(_), None | Some(Causality::After)) => {}
            (_, None | Some(Causality::After)) => {
                return Err(format!(
                    "{}: {version:?} has seen everything stored ({stored:?}) but gave {outcome:?}",
                    self.name
                ))
            }
            (Outcome::Conflict { .. }, Some(Causality::Equal)) => {
                return Err(format!(
                    "{}: {version:?} equal to what is stored ({stored:?}) is a conflict",
                    self.name
                ))
            }
            _ => {}
        }
        self.stats.record(&outcome);
        match &outcome {
            Outcome::Applied(versions) => {
                self.store.insert(key, versions.clone());
            }
            Outcome::Conflict { versions, .. } => {
                self.conflicts += 1;
                self.store.insert(key, versions.clone());
            }
            Outcome::Obsolete => {}
        }
        Ok(outcome)
    }
}

/// A small deterministic generator for the final delivery order (splitmix64).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Every (to, from, write index) delivery, shuffled by the case's seed.
fn final_deliveries(regions: &[Region], seed: u64) -> Vec<(usize, usize, usize)> {
    let mut all = Vec::new();
    for to in 0..regions.len() {
        for (from, region) in regions.iter().enumerate() {
            if from != to {
                all.extend((0..region.outbox.len()).map(|index| (to, from, index)));
            }
        }
    }
    let mut state = seed;
    for i in (1..all.len()).rev() {
        let j = (splitmix(&mut state) % (i as u64 + 1)) as usize;
        all.swap(i, j);
    }
    all
}

fn deliver(
    regions: &mut [Region],
    (to, from, index): (usize, usize, usize),
    policy: &ConflictPolicy,
) -> Result<Outcome, String> {
    let (key, version) = regions[from].outbox[index].clone();
    regions[to].receive(key, &version, policy)
}

/// Runs `case` with `strategy` for every key: the schedule, then the final phase.
fn simulate(case: &Case, strategy: &str, resolvers: ResolversFactory) -> Result<Run, String> {
    let policy = ConflictPolicy {
        default: strategy.parse().map_err(|e| format!("{strategy}: {e}"))?,
        prefixes: BTreeMap::new(),
    };
    let mut regions: Vec<Region> = (0..case.regions)
        .map(|i| Region {
            name: REGIONS[i],
            clock: Hlc::default(),
            wall_ms: 1_000 + case.start_ms[i],
            store: BTreeMap::new(),
            outbox: Vec::new(),
            stats: ConflictStats::default(),
            conflicts: 0,
            resolvers: resolvers(),
        })
        .collect();
    let n = case.regions;
    for op in &case.ops {
        match *op {
            Op::Write {
                region,
                key,
                value,
                delete,
                advance_ms,
            } => {
                let value = (!delete).then(|| value_for(strategy, value));
                regions[region % n].write(key, value, advance_ms)?;
            }
            Op::Deliver { to, from, pick } => {
                let to = to % n;
                let from = (to + 1 + from % (n - 1)) % n;
                let written = regions[from].outbox.len();
                if written > 0 {
                    deliver(&mut regions, (to, from, pick % written), &policy)?;
                }
            }
        }
    }
    for delivery in final_deliveries(&regions, case.final_order_seed) {
        deliver(&mut regions, delivery, &policy)?;
    }
    Ok(Run { regions })
}

/// Every region holds the same versions of every key.
fn check_converged(run: &Run, strategy: &str) -> Result<(), String> {
    let first = &run.regions[0];
    for other in &run.regions[1..] {
        for (key, name) in KEYS.iter().enumerate() {
            if first.store.get(&key) != other.store.get(&key) {
                return Err(format!(
                    "{strategy}: key {name} diverged:\n  {}: {:?}\n  {}: {:?}",
                    first.name,
                    first.store.get(&key),
                    other.name,
                    other.store.get(&key)
                ));
            }
        }
    }
    Ok(())
}

/// The writes no other write of the same key has seen, in canonical order.
fn maximal_writes(run: &Run, key: usize) -> Vec<Version> {
    let writes: Vec<&Version> = run
        .regions
        .iter()
        .flat_map(|r| &r.outbox)
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v)
        .collect();
    let mut maximal: Vec<Version> = writes
        .iter()
        .filter(|v| {
            !writes
                .iter()
                .any(|other| other.vector.compare(&v.vector) == Causality::After)
        })
        .map(|v| (*v).clone())
        .collect();
    maximal.sort_by_key(|v| (v.hlc, v.origin.clone()));
    maximal
}

/// The value every region should show for a key whose maximal writes are `maximal`, computed
/// independently of `raftix::regions`'s resolution (which folds versions).
fn expected_value(strategy: &str, maximal: &[Version]) -> Option<Bytes> {
    let latest = maximal.last().and_then(|v| v.value.clone());
    let values: Option<Vec<&Bytes>> = maximal.iter().map(|v| v.value.as_ref()).collect();
    if maximal.len() <= 1 {
        return latest;
    }
    match strategy {
        "latest-timestamp" | "multi-value" => latest,
        "lww-register" => maximal
            .iter()
            .max_by_key(|v| (v.hlc.physical_ms, v.origin == PRIMARY, v.origin.clone()))
            .and_then(|v| v.value.clone()),
        "custom:max" => {
            let numbers: Option<Vec<(f64, &Bytes)>> = values.and_then(|values| {
                values
                    .into_iter()
                    .map(|b| Some((std::str::from_utf8(b).ok()?.parse::<f64>().ok()?, b)))
                    .collect()
            });
            match numbers {
                Some(numbers) => numbers
                    .into_iter()
                    .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)))
                    .map(|(_, b)| b.clone()),
                None => latest,
            }
        }
        "custom:union" => {
            let sets: Option<Vec<Vec<u8>>> = values.and_then(|values| {
                values
                    .into_iter()
                    .map(|b| serde_json::from_slice::<Vec<u8>>(b).ok())
                    .collect()
            });
            match sets {
                Some(sets) => {
                    let union: BTreeSet<u8> = sets.into_iter().flatten().collect();
                    let elements: Vec<String> = union.iter().map(u8::to_string).collect();
                    Some(Bytes::from(format!("[{}]", elements.join(","))))
                }
                None => latest,
            }
        }
        "custom:first" => match values {
            Some(values) => values.first().map(|b| (*b).clone()),
            None => latest,
        },
        other => panic!("no oracle for {other}"),
    }
}

/// Every region holds what the oracle computes from the set of all writes.
fn check_oracle(run: &Run, strategy: &str) -> Result<(), String> {
    for (key, name) in KEYS.iter().enumerate() {
        let maximal = maximal_writes(run, key);
        let stored = run.regions[0].store.get(&key);
        let Some(stored) = stored else {
            if maximal.is_empty() {
                continue;
            }
            return Err(format!("{strategy}: key {name} lost: {maximal:?}"));
        };
        if stored.concurrent() != maximal.as_slice() {
            return Err(format!(
                "{strategy}: key {name} holds concurrent {:?}, the maximal writes are {maximal:?}",
                stored.concurrent()
            ));
        }
        let conflict = maximal.len() > 1;
        let multi_value = strategy == "multi-value";
        let shape = (stored.has_siblings(), stored.is_resolved());
        if shape != (conflict && multi_value, conflict && !multi_value) {
            return Err(format!("{strategy}: key {name} shape {stored:?}"));
        }
        let all_seen = maximal
            .iter()
            .fold(VersionVector::default(), |acc, v| acc.merged(&v.vector));
        let expected_winner = if strategy == "lww-register" {
            maximal
                .iter()
                .max_by_key(|v| (v.hlc.physical_ms, v.origin == PRIMARY, v.origin.clone()))
        } else {
            maximal.last()
        };
        let winner = stored.winner().map(|v| (v.hlc, &v.origin));
        if stored.vector() != all_seen
            || winner != expected_winner.map(|v| (v.hlc, &v.origin))
            || (!stored.has_siblings() && stored.winner().map(|v| &v.vector) != Some(&all_seen))
        {
            return Err(format!(
                "{strategy}: key {name} holds {stored:?}, expected the vector {all_seen:?} and \
                 the timestamp and origin of {expected_winner:?}"
            ));
        }
        let expected = expected_value(strategy, &maximal);
        if stored.current() != expected.as_ref() {
            return Err(format!(
                "{strategy}: key {name} shows {:?}, expected {expected:?} from {maximal:?}",
                stored.current()
            ));
        }
    }
    Ok(())
}

/// Re-delivering every write again changes nothing anywhere.
fn check_idempotent(run: &mut Run, case: &Case, strategy: &str) -> Result<(), String> {
    let policy = ConflictPolicy {
        default: strategy.parse().map_err(|e| format!("{strategy}: {e}"))?,
        prefixes: BTreeMap::new(),
    };
    let before: Vec<BTreeMap<usize, Versions>> =
        run.regions.iter().map(|r| r.store.clone()).collect();
    for delivery in final_deliveries(&run.regions, case.final_order_seed.wrapping_add(1)) {
        let outcome = deliver(&mut run.regions, delivery, &policy)?;
        if outcome != Outcome::Obsolete {
            return Err(format!(
                "{strategy}: re-delivery {delivery:?} gave {outcome:?}"
            ));
        }
    }
    let after: Vec<BTreeMap<usize, Versions>> =
        run.regions.iter().map(|r| r.store.clone()).collect();
    if before != after {
        return Err(format!("{strategy}: re-delivery changed the stores"));
    }
    Ok(())
}

/// The conflict statistics count exactly the conflicts, by the key's strategy, failures only
/// for custom merges, and the same on a second run of the same schedule.
fn check_stats(run: &Run, again: &Run, strategy: &str) -> Result<(), String> {
    for (region, replay) in run.regions.iter().zip(&again.regions) {
        let stats = &region.stats;
        if stats != &replay.stats || region.store != replay.store {
            return Err(format!("{strategy}: {} differs on a replay", region.name));
        }
        let counted: u64 = stats.by_strategy.values().sum();
        let only_this = stats.by_strategy.keys().all(|s| s == strategy);
        let failures_allowed = strategy.starts_with("custom:") || stats.failed == 0;
        if stats.total != region.conflicts
            || counted != stats.total
            || !only_this
            || stats.failed > stats.total
            || !failures_allowed
        {
            return Err(format!(
                "{strategy}: {} counted {stats:?} for {} conflicts",
                region.name, region.conflicts
            ));
        }
    }
    Ok(())
}

/// All checks of one case and strategy.
fn check(case: &Case, strategy: &str, resolvers: ResolversFactory) -> Result<(), String> {
    let mut run = simulate(case, strategy, resolvers)?;
    check_converged(&run, strategy)?;
    check_oracle(&run, strategy)?;
    let again = simulate(case, strategy, resolvers)?;
    check_stats(&run, &again, strategy)?;
    check_idempotent(&mut run, case, strategy)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn regions_converge_for_every_strategy(case in case()) {
        for strategy in STRATEGIES {
            if let Err(failure) = check(&case, strategy, &standard_resolvers) {
                return Err(TestCaseError::fail(failure));
            }
        }
    }

    #[test]
    fn a_write_that_has_seen_another_is_never_a_conflict(
        first in 0u8..12, second in 0u8..12, ms in 0u64..5, later_ms in 0u64..5,
    ) {
        let resolvers = standard_resolvers();
        let ctx = ResolveContext { primary: Some(PRIMARY), resolvers: &resolvers };
        for strategy in STRATEGIES {
            let policy = ConflictPolicy {
                default: strategy.parse().map_err(TestCaseError::fail)?,
                prefixes: BTreeMap::new(),
            };
            // eu-west writes; us-east receives it, then writes over it (its clock behind or not).
            let clock = Hlc::default().tick(ms);
            let a = local_write(None, Some(value_for(strategy, first)), REGIONS[0], clock);
            let stored = Versions::single(a.clone());
            let b_clock = Hlc::default().observe(a.hlc).tick(later_ms);
            let b = local_write(Some(&stored), Some(value_for(strategy, second)), REGIONS[1], b_clock);
            prop_assert_eq!(
                apply_remote(Some(&stored), b.clone(), "k", &policy, &ctx),
                Outcome::Applied(Versions::single(b.clone()))
            );
            // And the older write, arriving after, is obsolete.
            let newer = Versions::single(b);
            prop_assert_eq!(apply_remote(Some(&newer), a, "k", &policy, &ctx), Outcome::Obsolete);
        }
    }

    #[test]
    fn builtin_merges_commute_and_associate(
        a in number_text(), b in number_text(), c in number_text(),
        x in vec(0u8..6, 0..5), y in vec(0u8..6, 0..5), z in vec(0u8..6, 0..5),
    ) {
        let resolvers = Resolvers::with_builtins();
        let arrays = [x, y, z].map(|set| Bytes::from(format!("{set:?}")));
        let numbers = [a, b, c].map(Bytes::from);
        for (name, [a, b, c]) in [("max", &numbers), ("min", &numbers), ("union", &arrays)] {
            let resolver = resolvers.get(name).ok_or_else(|| TestCaseError::fail(name))?;
            let merge = |p: &Bytes, q: &Bytes| resolver.merge("k", p, q);
            prop_assert_eq!(merge(a, b), merge(b, a), "{} commutes", name);
            let left = merge(a, b).and_then(|ab| merge(&ab, c));
            let right = merge(b, c).and_then(|bc| merge(a, &bc));
            prop_assert!(left.is_some(), "{} merges valid values", name);
            prop_assert_eq!(left, right, "{} associates", name);
        }
    }
}

/// Integer or float text in several forms, many numerically equal.
fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (-20i64..20).prop_map(|n| n.to_string()),
        (-20i64..20).prop_map(|n| format!("{n}.0")),
        (-20i64..20).prop_map(|n| format!("{}e-1", n * 10)),
        (-200i64..200).prop_map(|n| format!("{}", n as f64 / 10.0)),
    ]
}

/// A resolver whose answer depends on how many merges its region did: not deterministic.
struct Flaky {
    calls: AtomicU64,
}

impl raftix::regions::MergeResolver for Flaky {
    fn merge(&self, _key: &str, a: &Bytes, b: &Bytes) -> Option<Bytes> {
        let calls = self.calls.fetch_add(1, Ordering::Relaxed);
        Some(if calls.is_multiple_of(2) {
            a.clone()
        } else {
            b.clone()
        })
    }
}

#[test]
fn known_bad_a_non_deterministic_resolver_makes_regions_diverge() {
    let flaky_resolvers = || {
        let mut resolvers = standard_resolvers();
        resolvers.register(
            "flaky",
            Arc::new(Flaky {
                calls: AtomicU64::new(0),
            }),
        );
        resolvers
    };
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 500,
            failure_persistence: None,
            ..Config::default()
        },
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let result = runner.run(&case(), |case| {
        let run = simulate(&case, "custom:flaky", &flaky_resolvers).map_err(TestCaseError::fail)?;
        check_converged(&run, "custom:flaky").map_err(TestCaseError::fail)
    });
    match result {
        Err(TestError::Fail(reason, minimal)) => {
            eprintln!("as expected, the property fails: {reason}\nminimal case: {minimal:?}");
            assert!(reason.to_string().contains("diverged"), "{reason}");
        }
        other => panic!("a non-deterministic resolver should make regions diverge: {other:?}"),
    }
}

#[test]
fn known_bad_a_region_with_another_policy_diverges() {
    // us-east writes v2 then v3, at (1000, 0) and (1000, 1); eu-west, the primary, writes v1
    // at (1000, 0), concurrently. latest-timestamp keeps v3 (greater counter), lww-register v1
    // (same millisecond, primary): a region resolving with another policy than the others
    // diverges, and the convergence check says so.
    let write = |region, value| Op::Write {
        region,
        key: 0,
        value,
        delete: false,
        advance_ms: 0,
    };
    let case = Case {
        regions: 2,
        start_ms: vec![0; 4],
        ops: vec![write(1, 2), write(1, 3), write(0, 1)],
        final_order_seed: 7,
    };
    let lww = simulate(&case, "lww-register", &standard_resolvers).expect("runs");
    let latest = simulate(&case, "latest-timestamp", &standard_resolvers).expect("runs");
    assert_eq!(check_converged(&lww, "lww-register"), Ok(()));
    assert_eq!(check_converged(&latest, "latest-timestamp"), Ok(()));
    let shown = |run: &Run| {
        run.regions[0]
            .store
            .get(&0)
            .and_then(|v| v.current().cloned())
    };
    assert_eq!(shown(&lww), Some(Bytes::from("v1")));
    assert_eq!(shown(&latest), Some(Bytes::from("v3")));
    let mixed = Run {
        regions: vec![
            lww.regions.into_iter().next().expect("region 0"),
            latest.regions.into_iter().nth(1).expect("region 1"),
        ],
    };
    let failure = check_converged(&mixed, "mixed").expect_err("policies disagree");
    assert!(failure.contains("diverged"), "{failure}");
}

#[test]
fn the_strategies_checked_parse() {
    for strategy in STRATEGIES {
        let parsed: ConflictStrategy = strategy.parse().expect("valid");
        assert_eq!(parsed.to_string(), strategy);
    }
}
