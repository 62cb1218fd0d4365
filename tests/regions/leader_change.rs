//! A leader change in either region mid-stream (issue 8): two regions (each a 3-node
//! `raftix serve` cluster on loopback) stream writes to each other; the leader of the source
//! region, and later the leader of the destination region, is killed with SIGKILL during the
//! stream. Replication resumes from the replicated acknowledgements: afterwards each region's
//! `applied_from_seq` for the other equals the other's `last_seq`, every key holds its last
//! value on every node, and nothing was applied twice or skipped.

use crate::support::regions;
use crate::support::rng;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use regions::{Outcome, Regions, CONVERGE};
use rng::Rng;
use serde_json::json;

/// What a writer did to one key, in order: (value, acknowledged).
type History = BTreeMap<String, Vec<(String, bool)>>;

/// Writes to region `r` through random nodes until `stop`: fresh keys (`NAME/seq/i`) and
/// overwrites of a few hot keys (`NAME/hot/k`). A write whose outcome is unknown (its node was
/// killed) is recorded as such.
fn writer(
    regions: &Regions,
    r: usize,
    seed: u64,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
) -> thread::JoinHandle<History> {
    let writer = regions.writer(r);
    let name = regions.names[r].clone();
    thread::spawn(move || {
        let mut rng = Rng(seed);
        let mut history = History::new();
        let mut i = 0u64;
        while !stop.load(Ordering::SeqCst) {
            i += 1;
            let key = if rng.chance(30) {
                format!("{name}/hot/{}", rng.below(3))
            } else {
                format!("{name}/seq/{i}")
            };
            let value = format!("{name}-{i}");
            let acked = writer.write(rng.below(3) as usize, &key, Some(&value)) == Outcome::Acked;
            history.entry(key).or_default().push((value, acked));
            count.fetch_add(1, Ordering::SeqCst);
        }
        history
    })
}

/// Waits until the writers made `n` more writes.
fn wait_writes(regions: &Regions, count: &AtomicU64, n: u64, what: &str) {
    let target = count.load(Ordering::SeqCst) + n;
    let start = Instant::now();
    while count.load(Ordering::SeqCst) < target {
        if start.elapsed() > Duration::from_secs(30) {
            regions.fail(&format!("the writers stalled {what}"));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the leader of region `r` with SIGKILL, waits for a new one, restarts the killed node.
fn kill_leader(regions: &mut Regions, r: usize, count: &AtomicU64) -> u64 {
    let leader = regions.leader(r);
    regions.clusters[r].kill9(leader);
    let (new_leader, _) = regions.clusters[r].wait_leader(Duration::from_secs(15));
    assert_ne!(new_leader, leader);
    wait_writes(regions, count, 20, "after the leader change");
    regions.clusters[r].restart(leader);
    leader
}

#[test]
fn leader_change_in_either_region_resumes_without_gaps_or_duplicates() {
    let seed = regions::seed();
    let mut regions = Regions::start(&["eu", "us"]);
    regions.wait_replicated(CONVERGE);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..2)
        .map(|r| {
            writer(
                &regions,
                r,
                seed.wrapping_add(r as u64),
                stop.clone(),
                count.clone(),
            )
        })
        .collect();

    wait_writes(&regions, &count, 40, "before the first kill");
    // The source region of the eu -> us stream loses its leader, then the destination.
    kill_leader(&mut regions, 0, &count);
    kill_leader(&mut regions, 1, &count);
    stop.store(true, Ordering::SeqCst);
    let histories: Vec<History> = writers
        .into_iter()
        .map(|w| {
            w.join()
                .unwrap_or_else(|_| panic!("writer panicked; seed {seed}"))
        })
        .collect();

    // Every node back, every link caught up: applied_from_seq == the other's last_seq.
    for r in 0..2 {
        regions.clusters[r].wait_converged(0, Duration::from_secs(20));
    }
    regions.wait_replicated(CONVERGE);
    for r in 0..2 {
        let out = regions.link_status(r, 1 - r);
        let back = regions.link_status(1 - r, r);
        assert_eq!(
            back["applied_from_seq"],
            out["last_seq"],
            "{} applied {} of {}'s outbox, which ends at {}; seed {seed}",
            regions.names[1 - r],
            back["applied_from_seq"],
            regions.names[r],
            out["last_seq"]
        );
    }

    let keys: Vec<String> = histories.iter().flat_map(|h| h.keys().cloned()).collect();
    let values = regions.wait_converged(&keys, CONVERGE);
    for history in &histories {
        for (key, writes) in history {
            let got = values[key]
                .as_deref()
                .map(|v| String::from_utf8_lossy(v).into_owned());
            // The last acknowledged write, or a later one whose outcome was unknown.
            let last_acked = writes.iter().rposition(|(_, acked)| *acked);
            let allowed: Vec<&str> = writes
                .iter()
                .enumerate()
                .filter(|(i, _)| last_acked.is_none_or(|a| *i >= a))
                .map(|(_, (v, _))| v.as_str())
                .collect();
            let ok = match &got {
                Some(v) => allowed.contains(&v.as_str()),
                None => last_acked.is_none(),
            };
            assert!(ok, "{key}: holds {got:?}; writes {writes:?}; seed {seed}");
        }
    }
    // Keys are written by one region only: a conflict would mean a mutation applied twice
    // out of order or a version lost.
    for r in 0..2 {
        let stats = regions.conflict_stats(r);
        assert_eq!(
            stats["total"],
            json!(0),
            "{}: {stats}; seed {seed}",
            regions.names[r]
        );
    }
    let total: usize = histories
        .iter()
        .map(|h| h.values().map(Vec::len).sum::<usize>())
        .sum();
    eprintln!("{total} writes; seed {seed}");
}
