//! A partition between two regions (each a 3-node `raftix serve` cluster on loopback), then
//! healing, loses nothing acknowledged (issue 8): writes keep being acknowledged on both sides
//! while the link is cut, and afterwards every node of both regions holds, for every key, the
//! acknowledged write latest-timestamp documents as the winner.

use crate::support::regions;
use crate::support::rng;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use regions::{Outcome, Regions, Sibling, CONVERGE};
use rng::Rng;

/// Keys both regions write while partitioned.
const SHARED_KEYS: u64 = 6;

/// One acknowledged write.
#[derive(Clone, Debug)]
struct Acked {
    key: String,
    value: String,
    /// Its version (read back at once, while the link was cut), for shared keys.
    version: Option<Sibling>,
}

/// A writer thread of region `name`: writes its own keys (`own/NAME/i`, each once) all along,
/// and while `cut` is set also the shared keys (`shared/k`), reading back the version each
/// write got. Stops when `stop` is set; returns every acknowledged write.
fn writer(
    regions: &Regions,
    r: usize,
    seed: u64,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<Vec<Acked>> {
    let writer = regions.writer(r);
    let name = regions.names[r].clone();
    thread::spawn(move || {
        let mut rng = Rng(seed);
        let mut acked = Vec::new();
        let mut i = 0u64;
        while !stop.load(Ordering::SeqCst) {
            i += 1;
            let node = rng.below(3) as usize;
            let partitioned = cut.load(Ordering::SeqCst);
            let (key, value) = if partitioned && rng.chance(60) {
                (
                    format!("shared/{}", rng.below(SHARED_KEYS)),
                    format!("{name}-{i}"),
                )
            } else {
                (format!("own/{name}/{i}"), format!("{name}-{i}"))
            };
            match writer.write(node, &key, Some(&value)) {
                Outcome::Acked => {}
                Outcome::Unknown(why) => panic!("{name}: PUT {key} not acknowledged: {why}"),
            }
            let version = if key.starts_with("shared/") {
                // Read back the version this write got. The link is cut, so nothing from the
                // other region can have replaced it; if it was healed meanwhile, skip the key
                // (the test only reasons about shared writes made during the cut).
                let siblings = writer.siblings(node, &key).expect("siblings");
                match siblings.as_slice() {
                    [only]
                        if only.value.as_deref() == Some(value.as_str()) && only.origin == name =>
                    {
                        Some(only.clone())
                    }
                    _ if !cut.load(Ordering::SeqCst) => continue,
                    other => panic!("{name}: {key} just written as {value} reads {other:?}"),
                }
            } else {
                None
            };
            acked.push(Acked {
                key,
                value,
                version,
            });
        }
        acked
    })
}

/// Two regions under latest-timestamp write all along: their own keys before, during and after
/// a cut of the link between them, and keys both write while the link is cut. After healing:
/// - every acknowledged write of an own key (written once) is on every node of both regions;
/// - every shared key holds, on every node, the acknowledged write with the greatest
///   `(hlc, origin region)` among all acknowledged writes of it (the HLCs read back with
///   `?siblings=true` right after each write): every other acknowledged write of it lost to
///   a write latest-timestamp documents as winning, none vanished otherwise.
#[test]
fn partition_then_heal_loses_nothing_acknowledged() {
    let seed = regions::seed();
    let regions = Regions::start(&["eu", "us"]);
    regions.wait_replicated(CONVERGE);
    let cut = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|r| {
            writer(
                &regions,
                r,
                seed.wrapping_add(r as u64),
                cut.clone(),
                stop.clone(),
            )
        })
        .collect();

    let progress = |what: &str| {
        // Let each phase see some writes: wait until both regions' outboxes moved on.
        let before: Vec<u64> = (0..2)
            .map(|r| {
                regions.link_status(r, 1 - r)["last_seq"]
                    .as_u64()
                    .unwrap_or(0)
            })
            .collect();
        let start = std::time::Instant::now();
        loop {
            let now: Vec<u64> = (0..2)
                .map(|r| {
                    regions.link_status(r, 1 - r)["last_seq"]
                        .as_u64()
                        .unwrap_or(0)
                })
                .collect();
            if now.iter().zip(&before).all(|(n, b)| *n >= b + 15) {
                return;
            }
            if start.elapsed() > Duration::from_secs(20) {
                regions.fail(&format!(
                    "no write progress while {what}: {before:?} -> {now:?}"
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    };

    progress("linked");
    regions.cut(0, 1);
    cut.store(true, Ordering::SeqCst);
    progress("cut");
    // While cut, the links say so: not connected, an error, entries and seconds of lag.
    for r in 0..2 {
        let link = regions.clusters[r].wait_for(
            Duration::from_secs(10),
            "the link status to show the cut",
            || {
                let link = regions.link_status(r, 1 - r);
                (link["connected"] == false).then_some(link)
            },
        );
        assert!(link["last_error"].is_string(), "{link}");
        assert!(link["lag_entries"].as_u64() > Some(0), "{link}");
        assert!(link["lag_seconds"].as_f64() > Some(0.0), "{link}");
        let acked = link["last_acked_seq"].as_u64().unwrap_or(0);
        assert!(link["last_seq"].as_u64() > Some(acked), "{link}");
    }
    cut.store(false, Ordering::SeqCst);
    regions.heal(0, 1);
    progress("healed");
    stop.store(true, Ordering::SeqCst);
    let acked: Vec<Acked> = writers
        .into_iter()
        .flat_map(|w| {
            w.join()
                .unwrap_or_else(|_| panic!("writer panicked; seed {seed}"))
        })
        .collect();

    let keys: Vec<String> = {
        let mut keys: Vec<String> = acked.iter().map(|a| a.key.clone()).collect();
        keys.sort();
        keys.dedup();
        keys
    };
    let values = regions.wait_converged(&keys, CONVERGE);
    for r in 0..2 {
        let link = regions.link_status(r, 1 - r);
        assert_eq!(link["connected"], true, "{link}");
        assert_eq!(link["last_error"], serde_json::Value::Null, "{link}");
        assert_eq!(link["lag_entries"], 0, "{link}");
        assert_eq!(link["lag_seconds"], 0.0, "{link}");
    }
    let mut winners: BTreeMap<&str, &Acked> = BTreeMap::new();
    let mut shared_writes = 0;
    for write in &acked {
        match &write.version {
            None if write.key.starts_with("own/") => {
                assert_eq!(
                    values[&write.key].as_deref(),
                    Some(write.value.as_bytes()),
                    "acknowledged {} = {} was lost; seed {seed}",
                    write.key,
                    write.value
                );
            }
            None => {}
            Some(v) => {
                shared_writes += 1;
                let entry = winners.entry(&write.key).or_insert(write);
                let best = entry.version.as_ref().expect("version");
                if (&v.hlc, &v.origin) > (&best.hlc, &best.origin) {
                    *entry = write;
                }
            }
        }
    }
    assert!(
        shared_writes >= 4,
        "too few conflicting writes during the cut ({shared_writes}); seed {seed}"
    );
    let regions_written: std::collections::BTreeSet<&str> = acked
        .iter()
        .filter(|a| a.version.is_some())
        .map(|a| a.version.as_ref().map_or("", |v| v.origin.as_str()))
        .collect();
    assert_eq!(
        regions_written.len(),
        2,
        "both regions wrote shared keys; seed {seed}"
    );
    for (key, winner) in winners {
        assert_eq!(
            values[key].as_deref(),
            Some(winner.value.as_bytes()),
            "{key}: latest-timestamp winner {:?} is not the final value; seed {seed}",
            winner.version
        );
    }
}
