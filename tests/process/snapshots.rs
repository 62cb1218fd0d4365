//! Snapshots with real `raftix serve` processes: a follower that missed many snapshots catches
//! up by InstallSnapshot, and one killed with SIGKILL in the middle of receiving it resumes the
//! transfer where it stopped after its restart, then serves every key.

use crate::support::process;

use std::time::{Duration, Instant};

use process::{http_client, ProcCluster};

const LEADER_TIMEOUT: Duration = Duration::from_secs(10);

fn tempdir() -> tempfile::TempDir {
    ProcCluster::temp_dir("raftix-snap-")
}

/// Size of the largest `incoming-*.part` file in `node`'s snapshot directory.
fn incoming_bytes(cluster: &ProcCluster, id: u64) -> u64 {
    let dir = cluster.node(id).data_dir.join("snapshots");
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("incoming-"))
                .filter_map(|e| e.metadata().ok().map(|m| m.len()))
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// `GET /v1/kv/{key}?consistency=stale` on node `id`: what that node itself applied.
fn local_get(cluster: &ProcCluster, id: u64, key: &str) -> Option<Vec<u8>> {
    let url = format!(
        "{}/v1/kv/{key}?consistency=stale",
        cluster.client().base(id)
    );
    let resp = http_client().get(url).send().ok()?;
    (resp.status() == 200).then(|| resp.bytes().map(|b| b.to_vec()).unwrap_or_default())
}

fn value_of(i: usize) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(16 * 1024, b'a' + (i % 26) as u8);
    v
}

#[test]
fn a_follower_killed_while_receiving_a_snapshot_resumes_it_and_catches_up() {
    const KEYS: usize = 1500;
    let mut cluster = ProcCluster::start_with(
        3,
        tempdir(),
        &["--snapshot-entries", "200", "--snapshot-keep", "20"],
    );
    let (leader, _) = cluster.wait_leader(LEADER_TIMEOUT);
    let follower = cluster.follower_of(leader);
    cluster.kill9(follower);
    for i in 0..KEYS {
        cluster.put_ok(&format!("k{i}"), &value_of(i));
    }
    // The leader snapshotted and compacted far past what the follower holds.
    cluster.restart(follower);
    cluster.wait_for(
        Duration::from_secs(20),
        "the follower to start receiving a snapshot",
        || (incoming_bytes(&cluster, follower) > 0).then_some(()),
    );
    cluster.kill9(follower);
    let held = incoming_bytes(&cluster, follower);
    assert!(held > 0, "a partial snapshot survives the kill");
    cluster.restart(follower);
    let started = Instant::now();
    let applied = cluster.wait_converged(KEYS as u64, Duration::from_secs(60));
    assert!(applied >= KEYS as u64);
    for i in (0..KEYS).step_by(37).chain([KEYS - 1]) {
        let got = local_get(&cluster, follower, &format!("k{i}"));
        assert_eq!(
            got.as_deref(),
            Some(value_of(i).as_slice()),
            "key k{i} on the restarted follower"
        );
    }
    let log = std::fs::read_to_string(&cluster.node(follower).log_path).expect("node log");
    assert!(
        log.contains("snapshot received"),
        "the follower caught up by InstallSnapshot"
    );
    let resumed = log
        .lines()
        .filter(|l| l.contains("receiving snapshot"))
        .filter_map(|l| l.split("resume_at=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .any(|offset| offset > 0);
    assert!(
        resumed,
        "the second transfer resumed from the partial file (held {held} bytes); caught up in {:?}",
        started.elapsed()
    );
    assert!(!log.contains("panicked"), "no panic in the follower's log");
}
