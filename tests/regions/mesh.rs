//! Three regions (each a 3-node `raftix serve` cluster on loopback, every pair linked through
//! proxies the test controls) under seeded random concurrent writes and deletes through every
//! node, while links between pairs of regions are cut and healed and leaders are killed at
//! random: once every link is healed and every node is back, all nine nodes hold identical
//! values and identical versions for every key (issue 8).

use crate::support::regions;
use crate::support::rng;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use regions::{Outcome, Regions, CONVERGE};
use rng::Rng;
use serde_json::json;

/// Keys per strategy prefix.
const KEYS: u64 = 4;
/// The prefixes, one per strategy (keys outside them: latest-timestamp).
const PREFIXES: [&str; 5] = ["lt/", "lww/", "mv/", "max/", "union/"];

/// A value fitting the key's strategy.
fn value_for(key: &str, rng: &mut Rng, tag: &str) -> String {
    if key.starts_with("max/") {
        (rng.below(10_000) as i64 - 5_000).to_string()
    } else if key.starts_with("union/") {
        format!("[\"{tag}\", {}]", rng.below(4))
    } else {
        tag.to_string()
    }
}

/// Random writes (10% deletes) to region `r` through random nodes until `stop`; returns how
/// many were acknowledged and how many ended unknown (a leader was killed under them).
fn writer(
    regions: &Regions,
    r: usize,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<(u64, u64)> {
    let writer = regions.writer(r);
    let name = regions.names[r].clone();
    thread::spawn(move || {
        let mut rng = Rng(seed);
        let (mut acked, mut unknown) = (0, 0);
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let prefix = PREFIXES[rng.below(PREFIXES.len() as u64) as usize];
            let key = format!("{prefix}{}", rng.below(KEYS));
            let value = value_for(&key, &mut rng, &format!("{name}-{n}"));
            let value = (!rng.chance(10)).then_some(value);
            match writer.write(rng.below(3) as usize, &key, value.as_deref()) {
                Outcome::Acked => acked += 1,
                Outcome::Unknown(_) => unknown += 1,
            }
        }
        (acked, unknown)
    })
}

#[test]
fn three_regions_converge_under_random_writes_and_link_cuts() {
    let seed = regions::seed();
    let mut rng = Rng(seed);
    let mut regions = Regions::start(&["eu", "us", "ap"]);
    let policy: serde_json::Map<String, serde_json::Value> = PREFIXES
        .iter()
        .zip([
            "latest-timestamp",
            "lww-register",
            "multi-value",
            "custom:max",
            "custom:union",
        ])
        .map(|(p, s)| (p.to_string(), json!(s)))
        .collect();
    regions.set_policy(json!({"default": "latest-timestamp", "prefixes": policy}));
    regions.configure_all("PUT", "/v1/regions/primary", json!({"id": "us"}));

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|r| writer(&regions, r, seed.wrapping_add(1 + r as u64), stop.clone()))
        .collect();
    // Ten steps of 300-700 ms: most cut or heal a random pair of regions; some kill -9 the
    // leader of a random region (restarted at a later step).
    let pairs = [(0, 1), (0, 2), (1, 2)];
    let mut cut = [false; 3];
    let mut killed: Option<(usize, u64)> = None;
    for _ in 0..10 {
        if rng.chance(25) {
            match killed.take() {
                Some((r, id)) => regions.clusters[r].restart(id),
                None => {
                    let r = rng.below(3) as usize;
                    let leader = regions.leader(r);
                    regions.clusters[r].kill9(leader);
                    killed = Some((r, leader));
                }
            }
        } else {
            let p = rng.below(3) as usize;
            let (i, j) = pairs[p];
            if cut[p] {
                regions.heal(i, j);
            } else {
                regions.cut(i, j);
            }
            cut[p] = !cut[p];
        }
        // The writers run meanwhile: this is the length of a phase, not a wait for an event.
        thread::sleep(Duration::from_millis(300 + rng.below(400)));
    }
    for (p, (i, j)) in pairs.iter().enumerate() {
        if cut[p] {
            regions.heal(*i, *j);
        }
    }
    if let Some((r, id)) = killed {
        regions.clusters[r].restart(id);
    }
    stop.store(true, Ordering::SeqCst);
    let (acked, unknown) = writers
        .into_iter()
        .map(|w| {
            w.join()
                .unwrap_or_else(|_| panic!("a writer panicked; seed {seed}"))
        })
        .fold((0, 0), |(a, u), (a2, u2)| (a + a2, u + u2));
    assert!(acked >= 30, "only {acked} writes acknowledged; seed {seed}");
    let written = acked + unknown;

    let keys: Vec<String> = PREFIXES
        .iter()
        .flat_map(|p| (0..KEYS).map(move |k| format!("{p}{k}")))
        .collect();
    let started = Instant::now();
    regions.wait_converged(&keys, CONVERGE);
    // Same versions too (values, origins, timestamps, siblings) on all nine nodes.
    for key in &keys {
        let mut first = None;
        for (r, id) in regions.all_nodes() {
            let siblings = regions
                .siblings(r, id, key)
                .unwrap_or_else(|| regions.fail(&format!("siblings of {key} on {r}/{id}")));
            match &first {
                None => first = Some(siblings),
                Some(f) => assert_eq!(
                    f, &siblings,
                    "{key}: versions on {}/node {id} differ; seed {seed}",
                    regions.names[r]
                ),
            }
        }
    }
    // With writes to 20 keys from three regions while links were cut, conflicts happened.
    let conflicts: u64 = (0..3)
        .map(|r| regions.conflict_stats(r)["total"].as_u64().unwrap_or(0))
        .sum();
    assert!(
        conflicts > 0,
        "no conflict was counted in any region; seed {seed}"
    );
    eprintln!(
        "{written} writes converged {:?} after the last heal",
        started.elapsed()
    );
}
