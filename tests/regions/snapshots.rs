//! Region state travels in snapshots (issue 8): in two regions (each a 3-node `raftix serve`
//! cluster on loopback) that snapshot and compact their logs every 200 entries, a follower of
//! each region is down while both regions write and replicate to each other; it catches up by
//! InstallSnapshot, holding the same values and versions as the others; then each region's
//! leader is killed, so a node that caught up that way may lead and ship, and replication still
//! completes with every node of both regions identical.

use crate::support::regions;

use std::time::Duration;

use regions::{Regions, CONVERGE};

/// Keys each region writes while a follower of each is down.
const WRITES: usize = 300;

#[test]
fn followers_catch_up_on_region_state_by_snapshot_and_can_ship() {
    let mut regions = Regions::start_with(
        &["eu", "us"],
        &["--snapshot-entries", "200", "--snapshot-keep", "20"],
    );
    regions.wait_replicated(CONVERGE);
    let mut down = Vec::new();
    for r in 0..2 {
        let leader = regions.leader(r);
        let follower = regions.clusters[r]
            .ids()
            .into_iter()
            .find(|&id| id != leader)
            .expect("a follower");
        regions.clusters[r].kill9(follower);
        down.push(follower);
    }
    let mut keys = Vec::new();
    for i in 0..WRITES {
        for (r, name) in ["eu", "us"].iter().enumerate() {
            // Half the keys are written by both regions (conflicts, resolved on both sides).
            let key = if i.is_multiple_of(2) {
                format!("both/{i}")
            } else {
                format!("{name}/{i}")
            };
            regions.put_ok(r, regions.leader(r), &key, &format!("{name}-{i}"));
            keys.push(key);
        }
    }
    keys.sort();
    keys.dedup();
    regions.wait_replicated(CONVERGE);
    for (r, &id) in down.iter().enumerate() {
        regions.clusters[r].restart(id);
    }
    for (r, &id) in down.iter().enumerate() {
        regions.clusters[r].wait_converged(0, Duration::from_secs(30));
        let log =
            std::fs::read_to_string(&regions.clusters[r].node(id).log_path).expect("node log");
        assert!(
            log.contains("snapshot received"),
            "node {id} of {} caught up by InstallSnapshot",
            regions.names[r]
        );
    }
    // Leaders change: the new one may be the node restored from a snapshot.
    for r in 0..2 {
        let leader = regions.leader(r);
        regions.clusters[r].kill9(leader);
        regions.clusters[r].wait_leader(Duration::from_secs(15));
        for i in 0..20 {
            let key = format!("after/{}/{i}", regions.names[r]);
            regions.put_ok(r, regions.leader(r), &key, "x");
            keys.push(key);
        }
        regions.clusters[r].restart(leader);
    }
    regions.wait_converged(&keys, CONVERGE);
    // Same versions everywhere, the restored followers included.
    for key in keys.iter().step_by(7) {
        let first = regions.siblings(0, 1, key).expect("siblings");
        assert_eq!(first.len(), 1, "{key}: {first:?}");
        for (r, id) in regions.all_nodes() {
            assert_eq!(
                regions.siblings(r, id, key).as_ref(),
                Some(&first),
                "{key} on {}/node {id}",
                regions.names[r]
            );
        }
    }
}
