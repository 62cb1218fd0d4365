//! Two regions (each a 3-node `raftix serve` cluster on loopback, linked through proxies the
//! test controls): writes made in either reach every node of both, and concurrent conflicting
//! writes under each strategy converge everywhere to the documented result, with the conflict
//! statistics counting them (issue 8).

use crate::support::regions;
use crate::support::rng;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use regions::{Regions, Sibling, CONVERGE};
use rng::Rng;
use serde_json::{json, Value};

const EU: usize = 0;
const US: usize = 1;

/// Writes through every node of both regions reach every node of both.
#[test]
fn writes_in_both_regions_reach_every_node() {
    let regions = Regions::start(&["eu", "us"]);
    let mut keys = Vec::new();
    for r in [EU, US] {
        for node in 1..=3 {
            let key = format!("both/{}-{node}", regions.names[r]);
            regions.put_ok(r, node, &key, &format!("v-{}-{node}", regions.names[r]));
            keys.push(key);
        }
    }
    let values = regions.wait_converged(&keys, CONVERGE);
    for r in [EU, US] {
        for node in 1..=3 {
            let key = format!("both/{}-{node}", regions.names[r]);
            let want = format!("v-{}-{node}", regions.names[r]);
            assert_eq!(values[&key].as_deref(), Some(want.as_bytes()), "{key}");
        }
    }
    // An overwrite and a delete in the other region travel too.
    regions.put_ok(US, 2, "both/eu-1", "overwritten-in-us");
    let (status, body) = regions.send(EU, "DELETE", "/v1/kv/both/us-3", None);
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    regions.wait_value_everywhere("both/eu-1", Some("overwritten-in-us"), CONVERGE);
    regions.wait_value_everywhere("both/us-3", None, CONVERGE);
}

/// Conflicting keys per strategy.
const K: usize = 4;

/// The strategies tested, with the key prefix each governs.
const STRATEGIES: [(&str, &str); 5] = [
    ("lt/", "latest-timestamp"),
    ("lww/", "lww-register"),
    ("mv/", "multi-value"),
    ("max/", "custom:max"),
    ("union/", "custom:union"),
];

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Waits (bounded) until the wall clock passed `ms`, so the next writes get later timestamps.
fn wait_clock_past(ms: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while now_ms() <= ms {
        assert!(
            std::time::Instant::now() < deadline,
            "the clock does not move"
        );
        std::thread::yield_now();
    }
}

/// The value region `r` writes for key number `k` of strategy prefix `prefix`.
fn value_for(prefix: &str, r: usize, k: usize, rng: &mut Rng) -> String {
    match prefix {
        "max/" => (rng.below(1000) as i64 - 500).to_string(),
        "union/" => {
            let a = rng.below(5);
            format!("[\"{}{k}\", \"{a}\", {}]", ["e", "u"][r], rng.below(3))
        }
        _ => format!("{}-{prefix}{k}", ["eu", "us"][r]),
    }
}

/// The single version `key` holds in region `r` (read on its node 1 while the link is cut).
fn own_version(regions: &Regions, r: usize, key: &str) -> Sibling {
    let siblings = regions
        .siblings(r, 1, key)
        .unwrap_or_else(|| regions.fail(&format!("siblings of {key}")));
    assert_eq!(
        siblings.len(),
        1,
        "{key} in {}: {siblings:?}",
        regions.names[r]
    );
    siblings[0].clone()
}

/// Concurrent conflicting writes under each strategy (one key prefix per strategy, K keys each),
/// injected by cutting the link, writing every key in both regions (for half the keys the eu
/// write is the later one, for the other half the us write), then healing. Every node of both
/// regions converges to the documented result:
/// - `latest-timestamp`: the version with the greater `(hlc, origin)` (the HLCs read back with
///   `?siblings=true` before healing), here the later write;
/// - `lww-register`: the later wall-clock write;
/// - `multi-value`: both values as siblings (`?siblings=true`, `X-Raftix-Siblings: 2`), until a
///   later write in one region supersedes them everywhere;
/// - `custom:max`: the numeric maximum; `custom:union`: the set union of the JSON arrays.
///
/// Statistics: a conflict is counted in each region that detects it, and here both do (each
/// receives the other's write of every key on top of its own), so `GET /v1/conflicts/stats` of
/// each region counts exactly K per strategy, 5K in all, no failed merge; `unresolved` counts
/// the K multi-value keys until they are superseded, then 0.
#[test]
fn conflicts_converge_per_strategy_and_are_counted() {
    let seed = regions::seed();
    let mut rng = Rng(seed);
    let regions = Regions::start(&["eu", "us"]);
    let prefixes: BTreeMap<&str, &str> = STRATEGIES.iter().copied().collect();
    regions.set_policy(json!({"default": "latest-timestamp", "prefixes": prefixes}));
    regions.configure_all("PUT", "/v1/regions/primary", json!({"id": "eu"}));
    regions.wait_replicated(CONVERGE);

    regions.cut(EU, US);
    // First writes: eu for even k, us for odd k; then the other region, later.
    let mut written: BTreeMap<String, [String; 2]> = BTreeMap::new();
    let mut versions: BTreeMap<String, [Sibling; 2]> = BTreeMap::new();
    for round in 0..2 {
        for (prefix, _) in STRATEGIES {
            for k in 0..K {
                let key = format!("{prefix}{k}");
                let r = if k.is_multiple_of(2) == (round == 0) {
                    EU
                } else {
                    US
                };
                let value = value_for(prefix, r, k, &mut rng);
                let node = 1 + rng.below(3);
                regions.put_ok(r, node, &key, &value);
                written.entry(key).or_default()[r] = value;
            }
        }
        wait_clock_past(now_ms());
    }
    for key in written.keys() {
        let pair = [
            own_version(&regions, EU, key),
            own_version(&regions, US, key),
        ];
        versions.insert(key.clone(), pair);
    }
    regions.heal(EU, US);
    let keys: Vec<String> = written.keys().cloned().collect();
    let values = regions.wait_converged(&keys, CONVERGE);

    for (key, [eu, us]) in &written {
        let got = values[key]
            .as_deref()
            .map(|v| String::from_utf8_lossy(v).into_owned());
        let [v_eu, v_us] = &versions[key];
        let later = if v_eu.hlc > v_us.hlc { eu } else { us };
        let k: usize = key
            .rsplit('/')
            .next()
            .and_then(|k| k.parse().ok())
            .unwrap_or(0);
        let expected_later = if k.is_multiple_of(2) { us } else { eu };
        assert_eq!(
            later, expected_later,
            "{key}: the HLCs do not follow the write order ({v_eu:?} {v_us:?}); seed {seed}"
        );
        match key.split('/').next().unwrap_or_default() {
            "lt" => {
                let winner = if (&v_eu.hlc, &v_eu.origin) > (&v_us.hlc, &v_us.origin) {
                    eu
                } else {
                    us
                };
                assert_eq!(
                    got.as_deref(),
                    Some(winner.as_str()),
                    "{key}: latest-timestamp; seed {seed}"
                );
            }
            "lww" => assert_eq!(
                got.as_deref(),
                Some(later.as_str()),
                "{key}: lww-register; seed {seed}"
            ),
            "mv" => {
                // The plain GET shows one of them, and says there are two.
                assert!(
                    got.as_deref() == Some(eu.as_str()) || got.as_deref() == Some(us.as_str()),
                    "{key}: {got:?}"
                );
                for (r, id) in regions.all_nodes() {
                    // Linearizable reads through every node; `consistency=all` on a follower is
                    // answered by the leader and relayed.
                    for query in ["", "consistency=all"] {
                        let read = regions.read_with(r, id, key, query).expect("read");
                        assert_eq!(
                            read.siblings,
                            Some(2),
                            "{key} X-Raftix-Siblings of GET ?{query} through {}/{id}",
                            regions.names[r]
                        );
                    }
                    let read = regions.read(r, id, key).expect("read");
                    assert_eq!(
                        read.siblings,
                        Some(2),
                        "{key} X-Raftix-Siblings on {}/{id}",
                        regions.names[r]
                    );
                    let siblings = regions.siblings(r, id, key).expect("siblings");
                    let seen: BTreeSet<Option<String>> =
                        siblings.iter().map(|s| s.value.clone()).collect();
                    let want: BTreeSet<Option<String>> =
                        [Some(eu.clone()), Some(us.clone())].into();
                    assert_eq!(
                        seen, want,
                        "{key} siblings on {}/{id}: {siblings:?}",
                        regions.names[r]
                    );
                    let origins: BTreeSet<&str> =
                        siblings.iter().map(|s| s.origin.as_str()).collect();
                    assert_eq!(origins, ["eu", "us"].into(), "{key}");
                }
            }
            "max" => {
                let max = eu.parse::<i64>().unwrap().max(us.parse::<i64>().unwrap());
                let got_n: Option<f64> = got.as_deref().and_then(|g| g.parse().ok());
                assert_eq!(
                    got_n,
                    Some(max as f64),
                    "{key}: custom:max of {eu} and {us}: {got:?}; seed {seed}"
                );
            }
            "union" => {
                let set = |text: &str| -> BTreeSet<String> {
                    let value: Value = serde_json::from_str(text).expect("JSON array");
                    value
                        .as_array()
                        .expect("array")
                        .iter()
                        .map(Value::to_string)
                        .collect()
                };
                let want: BTreeSet<String> = set(eu).union(&set(us)).cloned().collect();
                let got_set = got.as_deref().map(set);
                assert_eq!(
                    got_set,
                    Some(want),
                    "{key}: custom:union of {eu} and {us}: {got:?}; seed {seed}"
                );
            }
            other => panic!("unexpected prefix {other}"),
        }
    }

    // Statistics: K conflicts per strategy in each region.
    for r in [EU, US] {
        let stats = regions.conflict_stats(r);
        for (_, strategy) in STRATEGIES {
            assert_eq!(
                stats["by_strategy"][strategy],
                json!(K),
                "{strategy} in {}: {stats}",
                regions.names[r]
            );
        }
        assert_eq!(
            stats["total"],
            json!(5 * K),
            "{}: {stats}",
            regions.names[r]
        );
        assert_eq!(stats["failed"], json!(0), "{}: {stats}", regions.names[r]);
        assert_eq!(
            stats["unresolved"],
            json!(K),
            "{}: {stats}",
            regions.names[r]
        );
    }

    // A later write of each multi-value key, in either region, supersedes both siblings.
    let mut superseding = Vec::new();
    for k in 0..K {
        let key = format!("mv/{k}");
        let r = if rng.chance(50) { EU } else { US };
        let value = format!("resolved-{k}-in-{}", regions.names[r]);
        regions.put_ok(r, 1 + rng.below(3), &key, &value);
        superseding.push((key, value));
    }
    for (key, value) in &superseding {
        regions.wait_value_everywhere(key, Some(value), CONVERGE);
    }
    regions.wait_replicated(CONVERGE);
    for (key, value) in &superseding {
        for (r, id) in regions.all_nodes() {
            let read = regions.read(r, id, key).expect("read");
            assert_eq!(
                read.siblings, None,
                "{key} still has siblings on {}/{id}",
                regions.names[r]
            );
            let siblings = regions.siblings(r, id, key).expect("siblings");
            assert_eq!(
                siblings.len(),
                1,
                "{key} on {}/{id}: {siblings:?}",
                regions.names[r]
            );
            assert_eq!(siblings[0].value.as_deref(), Some(value.as_str()));
        }
    }
    for r in [EU, US] {
        let stats = regions.conflict_stats(r);
        assert_eq!(
            stats["unresolved"],
            json!(0),
            "{}: {stats}",
            regions.names[r]
        );
        assert_eq!(
            stats["total"],
            json!(5 * K),
            "superseding is no conflict: {stats}"
        );
    }
}
