//! Power loss: every node's data dir is a lazy filesystem (`raftix lazyfs`, crates/lazyfs) that
//! keeps each write in memory until it is fsynced. A power cut kills the node, then the
//! filesystem's daemon (so every unsynced write is gone), and the node restarts from what
//! survived. Cuts of one node (the leader), of a minority and of the whole cluster, with a
//! client writing throughout: every acknowledged write must be on every node afterwards, with
//! the replicas identical. A build that does not fsync (the `storage.no_sync` defect) must lose
//! acknowledged writes in the same scenario, which shows the cut really drops unsynced data.
//!
//! Needs root and `/dev/fuse` (the CI machine has both).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use raftix_lazyfs::LazyMount;

use crate::support::process::{raftix_bin, ProcCluster, PutOutcome};

/// A cluster of `raftix serve` processes whose data dirs are lazy filesystems.
struct PoweredCluster {
    cluster: ProcCluster,
    disks: BTreeMap<u64, LazyMount>,
}

impl PoweredCluster {
    /// `n` nodes, each with `env` (e.g. a `FAILPOINTS` defect), on power-loss disks.
    fn start(n: u64, env: &[(&str, &str)]) -> PoweredCluster {
        let mut cluster = ProcCluster::stopped(n, ProcCluster::temp_dir("raftix-power-"));
        let mut disks = BTreeMap::new();
        for id in cluster.ids() {
            let dir = cluster.dir().to_path_buf();
            let disk = LazyMount::start(
                vec![raftix_bin().into(), "lazyfs".into()],
                &dir.join(format!("disk-n{id}")),
                &cluster.node(id).data_dir,
                Some(dir.join(format!("lazyfs-n{id}.log"))),
            )
            .unwrap_or_else(|e| panic!("node {id}'s power-loss disk (root, /dev/fuse): {e}"));
            disks.insert(id, disk);
            let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
            cluster.set_env(id, env.collect());
        }
        PoweredCluster {
            cluster: cluster.started(),
            disks,
        }
    }

    /// Cuts the power of `ids` at once (all killed before any disk loses its unsynced
    /// writes), then powers them back on.
    fn power_cut(&mut self, ids: &[u64]) {
        for &id in ids {
            self.cluster.kill9(id);
        }
        for &id in ids {
            let disk = self.disks.get_mut(&id).expect("a disk per node");
            disk.cut_and_remount()
                .unwrap_or_else(|e| panic!("power cycle of node {id}'s disk: {e}"));
        }
        for &id in ids {
            self.cluster.restart(id);
        }
    }
}

impl Drop for PoweredCluster {
    fn drop(&mut self) {
        // Nodes die before their disks go; the temp dir goes last (with the cluster).
        for id in self.cluster.running() {
            self.cluster.kill9(id);
        }
        self.disks.clear();
    }
}

/// Writes `key-<n>` keys one after another from a thread until told to stop; returns the
/// acknowledged ones with their values.
fn start_writer(
    cluster: &ProcCluster,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<BTreeMap<String, Vec<u8>>> {
    let client = cluster.client();
    let ids = cluster.ids();
    thread::spawn(move || {
        let mut acked = BTreeMap::new();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let key = format!("key-{n}");
            let value = format!("value-{n}").into_bytes();
            let via = ids[n as usize % ids.len()];
            if let PutOutcome::Acked { .. } = client.put(via, &key, &value, Duration::from_secs(3))
            {
                acked.insert(key, value);
            }
            n += 1;
        }
        acked
    })
}

/// Waits (bounded) until the leader has applied `more` entries past what it had applied when
/// called: the writer got that many writes through.
fn wait_more_applied(cluster: &ProcCluster, more: u64) {
    let applied = || -> Option<u64> {
        let (leader, _) = cluster.wait_leader(Duration::from_secs(30));
        cluster.status(leader)?["applied"].as_u64()
    };
    let start = cluster.wait_for(
        Duration::from_secs(30),
        "the leader's applied index",
        applied,
    );
    cluster.wait_for(Duration::from_secs(30), "more writes applied", || {
        (applied()? >= start + more).then_some(())
    });
}

/// Which keys of `acked` node `id` does not hold with the acknowledged value.
fn missing_on(cluster: &ProcCluster, id: u64, acked: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    acked
        .iter()
        .filter(|(key, value)| cluster.get(id, key).as_deref() != Some(value.as_slice()))
        .map(|(key, _)| key.clone())
        .collect()
}

/// Runs the scenario: a writer throughout, then cuts of the leader, of a minority (two of
/// five) and of every node, each followed by more acknowledged writes; then one more write,
/// applied everywhere. Returns the writes acknowledged before the last cut.
fn cut_one_a_minority_and_all(powered: &mut PoweredCluster) -> BTreeMap<String, Vec<u8>> {
    let (leader, _) = powered.cluster.wait_leader(Duration::from_secs(20));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = start_writer(&powered.cluster, stop.clone());
    wait_more_applied(&powered.cluster, 20);
    powered.power_cut(&[leader]);
    wait_more_applied(&powered.cluster, 20);
    let minority: Vec<u64> = powered.cluster.ids().into_iter().rev().take(2).collect();
    powered.power_cut(&minority);
    wait_more_applied(&powered.cluster, 20);
    stop.store(true, Ordering::Relaxed);
    let acked = writer.join().expect("the writer thread");
    let all = powered.cluster.ids();
    powered.power_cut(&all);
    powered.cluster.wait_leader(Duration::from_secs(30));
    assert!(
        acked.len() >= 40,
        "too few writes acknowledged: {}",
        acked.len()
    );
    // One more write after the cuts, so every node's applied index passes everything before.
    let (index, _) = powered.cluster.put_ok("after-the-cuts", b"1");
    powered
        .cluster
        .wait_converged(index, Duration::from_secs(30));
    acked
}

#[test]
fn power_cuts_of_the_leader_a_minority_and_every_node_lose_no_acknowledged_write() {
    let mut powered = PoweredCluster::start(5, &[]);
    let acked = cut_one_a_minority_and_all(&mut powered);
    eprintln!(
        "{} acknowledged writes checked on every node after the power cuts",
        acked.len()
    );
    for id in powered.cluster.ids() {
        let missing = missing_on(&powered.cluster, id, &acked);
        assert!(
            missing.is_empty(),
            "node {id} lost {} of {} acknowledged writes after the power cuts, e.g. {:?}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(5)]
        );
    }
}

/// The same cuts on a build whose storage does not fsync: acknowledged writes are lost, so the
/// test above would fail if raftix skipped an fsync its durability depends on.
#[cfg(feature = "failpoints")]
#[test]
fn without_fsync_the_same_power_cuts_lose_acknowledged_writes() {
    let mut powered = PoweredCluster::start(5, &[("FAILPOINTS", "storage.no_sync=return")]);
    let acked = cut_one_a_minority_and_all(&mut powered);
    let leader = powered.cluster.wait_leader(Duration::from_secs(30)).0;
    let missing = missing_on(&powered.cluster, leader, &acked);
    eprintln!(
        "without fsync: {} of {} acknowledged writes lost by the power cuts",
        missing.len(),
        acked.len()
    );
    assert!(
        !missing.is_empty(),
        "with storage.no_sync all {} acknowledged writes survived the power cut: the lazy \
         filesystem did not drop unsynced writes",
        acked.len()
    );
}
