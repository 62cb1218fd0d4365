//! Snapshots, log compaction and InstallSnapshot in a running cluster: the real actor runtime,
//! LMDB in temp dirs and TCP on loopback (see `support/cluster.rs`), under write load and
//! faults (partitions, restarts, a throttled link).

use crate::support::cluster;
use crate::support::load;
use crate::support::proxy;
use crate::support::wait::{check, wait_until_async};

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use cluster::TestCluster;
use load::{check_same_state, check_writes, counter, log_bounds, wait_converged, Load};
use raftix::core::NodeId;

const ELECTION: Duration = Duration::from_secs(5);

fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
    ids.iter().copied().collect()
}

/// Sizes of the in-progress snapshot transfer files in a node's snapshot dir.
fn partial_files(data_dir: &Path) -> Vec<u64> {
    let Ok(dir) = std::fs::read_dir(data_dir.join("snapshots")) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .filter_map(|e| e.metadata().ok().map(|m| m.len()))
        .collect()
}

#[actix_rt::test]
async fn writes_survive_while_snapshots_and_compaction_run_and_the_log_stays_bounded() {
    const WRITERS: usize = 16;
    const PER_WRITER: u64 = 300;
    const VALUE: usize = 512;
    let mut c = TestCluster::start_with(3, |cfg| {
        cfg.snapshot_entries = 200;
        cfg.snapshot_keep = 50;
    })
    .await;
    c.wait_leader(&c.ids(), ELECTION).await;
    let started = std::time::Instant::now();
    let load = Load::start(c.handles.clone(), WRITERS, "w", VALUE, Some(PER_WRITER));
    let log = load.join().await;
    let total = WRITERS as u64 * PER_WRITER;
    assert_eq!(
        log.acked.len() as u64,
        total,
        "without faults every write is acknowledged; failures: {:?}",
        log.failures
    );
    eprintln!("{total} writes in {:?}", started.elapsed());
    let ids = c.ids();
    let leader = wait_converged(&c, &ids, Duration::from_secs(20)).await;
    for &id in &ids {
        check_writes(&c, id, "w", &log);
    }
    check_same_state(&c, &ids, "w");

    let last = c.statuses().await[&leader].last_log_index;
    assert!(last > total, "every write is an entry: {last}");
    for (&id, node) in &c.nodes {
        let taken = counter(&node.handle, |m| &m.snapshots_taken);
        assert!(
            taken >= total / 200 / 2,
            "node {id} took {taken} snapshots for {total} entries"
        );
        // The in-memory log holds the kept tail and what came after the last snapshot.
        let (first, last_held) = log_bounds(&node.handle).await;
        assert_eq!(last_held, last);
        assert!(
            first > last.saturating_sub(1000),
            "node {id} holds entries {first}..={last}: the log was not compacted"
        );
    }
    // On disk too: the durable log starts after the compacted prefix, and its file stays far
    // smaller than the entries written to it.
    let written = total * (VALUE as u64 + 16);
    for id in ids {
        c.stop_node(id).await;
        let dir = c.data_dir(id).join("log");
        let file = std::fs::metadata(dir.join("data.mdb"))
            .expect("log file")
            .len();
        let storage = raftix::storage::LmdbLog::open(&dir, 256 << 20).expect("open log");
        let first = storage.first_index();
        assert!(
            first > last.saturating_sub(1000),
            "node {id}: the durable log starts at {first} of {last}"
        );
        assert!(
            file * 3 < written,
            "node {id}: log file of {file} bytes for {written} bytes of entries written"
        );
        eprintln!(
            "node {id}: log file {file} bytes for {written} bytes written, first index {first}"
        );
    }
}

/// Partitions (or stops) a follower, writes enough for several snapshots and compactions, then
/// heals (or restarts) it: it must catch up through InstallSnapshot.
async fn lagging_follower_catches_up_by_snapshot(restart: bool) {
    let mut c = TestCluster::start_with(3, |cfg| {
        cfg.snapshot_entries = 200;
        cfg.snapshot_keep = 50;
    })
    .await;
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    let lagger = *c.ids().iter().find(|&&id| id != leader).expect("follower");
    let lagger_last = c.statuses().await[&lagger].last_log_index;
    if restart {
        c.stop_node(lagger).await;
    } else {
        c.partition(&set(&[lagger])).await;
    }
    let majority: BTreeSet<NodeId> = c.ids().into_iter().filter(|&id| id != lagger).collect();
    let leader = c.wait_leader(&majority, ELECTION).await;
    let handle = c.nodes[&leader].handle.clone();
    let acked = load::write_all(&handle, "k", 2000, 128, 100).await;
    let taken = counter(&handle, |m| &m.snapshots_taken);
    assert!(taken >= 3, "the leader took {taken} snapshots");
    let (first, _) = log_bounds(&handle).await;
    assert!(
        first > lagger_last + 1,
        "the leader compacted away what the follower needs: first {first}, follower at {lagger_last}"
    );
    if restart {
        c.restart_node(lagger).await;
    } else {
        c.heal().await;
    }
    let ids = c.ids();
    wait_converged(&c, &ids, Duration::from_secs(30)).await;
    let lagging = &c.nodes[&lagger];
    let installed = counter(&lagging.handle, |m| &m.snapshots_installed);
    let sent: u64 = c
        .nodes
        .values()
        .map(|n| counter(&n.handle, |m| &m.snapshots_sent))
        .sum();
    assert!(
        installed >= 1,
        "the follower installed {installed} snapshots"
    );
    assert!(sent >= 1, "no snapshot was sent");
    let log = load::WriteLog {
        attempted: acked.keys().cloned().collect(),
        acked,
        ..Default::default()
    };
    for &id in &ids {
        check_writes(&c, id, "k", &log);
    }
    check_same_state(&c, &ids, "k");
    // The follower's log now starts at (or after) the installed snapshot.
    let (first, _) = log_bounds(&lagging.handle).await;
    assert!(first > lagger_last + 1, "follower log starts at {first}");
    c.shutdown().await;
}

#[actix_rt::test]
async fn a_partitioned_follower_catches_up_by_install_snapshot() {
    lagging_follower_catches_up_by_snapshot(false).await;
}

#[actix_rt::test]
async fn a_stopped_follower_catches_up_by_install_snapshot_after_restart() {
    lagging_follower_catches_up_by_snapshot(true).await;
}

/// Node 3 sits behind a proxy (what the others send it can be throttled), is stopped while the
/// leader writes `keys` values of `value_len` bytes and snapshots, and is restarted. Returns the
/// cluster, the proxy, the writes and the snapshot's size.
async fn big_snapshot_for_node_3(
    keys: u64,
    value_len: usize,
) -> (
    TestCluster,
    proxy::Proxy,
    std::collections::BTreeMap<String, bytes::Bytes>,
    u64,
) {
    let proxy = proxy::Proxy::start().await;
    let (set_target, proxy_addr) = (proxy.target_setter(), proxy.addr.clone());
    let mut c = TestCluster::start_with(3, move |cfg| {
        cfg.snapshot_entries = 0; // snapshots only when asked
        cfg.snapshot_keep = 5;
        cfg.max_frame_bytes = 32 << 20;
        cfg.proposal_timeout_ms = 20_000;
        // Node 3 held behind the proxy grants votes to whoever asks: keep elections out of
        // the write bursts (a new leader without the snapshot would send entries instead).
        cfg.election_timeout_min_ms = 1000;
        cfg.election_timeout_max_ms = 2000;
        if cfg.id == 3 {
            set_target(&cfg.listen_peer);
        } else {
            cfg.cluster.insert(3, proxy_addr.clone());
        }
    })
    .await;
    let mut leader = c.wait_leader(&c.ids(), 2 * ELECTION).await;
    if leader == 3 {
        leader = c.nodes[&3]
            .handle
            .transfer_leader(Some(1))
            .await
            .expect("transfer");
        c.wait_until("node 1 leads", 2 * ELECTION, |s| {
            cluster::agreed_leader(s, &set(&[1, 2, 3])) == Some(1)
        })
        .await;
    }
    c.stop_node(3).await;
    let handle = c.nodes[&leader].handle.clone();
    let acked = load::write_all(&handle, "big", keys, value_len, 20).await;
    let snap = handle.snapshot().await.expect("snapshot");
    let (first, _) = log_bounds(&handle).await;
    assert!(first > 10, "the log was compacted: first {first}");
    (c, proxy, acked, snap.size)
}

#[actix_rt::test]
async fn a_follower_restarted_in_the_middle_of_an_install_resumes_it() {
    let (mut c, proxy, acked, size) = big_snapshot_for_node_3(160, 64 << 10).await;
    assert!(size > 8 << 20, "snapshot of {size} bytes");
    // Let about 3 MiB through, then hold the rest: the transfer stops part way.
    proxy.set_limit(proxy.forwarded() + (3 << 20));
    c.restart_node(3).await;
    let dir = c.data_dir(3);
    let partial = wait_until_async(
        Duration::from_secs(20),
        "2 MiB of the transfer in a partial file",
        || async {
            let sizes = partial_files(&dir);
            sizes.iter().copied().find(|&s| s >= 2 << 20).ok_or(sizes)
        },
    )
    .await;
    assert!(partial < size, "the transfer is held part way");
    c.stop_node(3).await;
    let held = partial_files(&dir);
    assert_eq!(
        held.len(),
        1,
        "the partial file survives the stop: {held:?}"
    );
    assert!(held[0] >= partial);
    let before_restart = proxy.forwarded();
    let term = c.statuses().await[&1].term;
    proxy.cut();
    proxy.unlimit();
    let started = std::time::Instant::now();
    c.restart_node(3).await;
    let ids = c.ids();
    wait_converged(&c, &ids, Duration::from_secs(30)).await;
    let took = started.elapsed();
    eprintln!("caught up {took:?} after the restart");
    // The leader notices the restarted follower by probing it, rather than waiting for the
    // transfer to be declared stalled.
    assert!(
        took < raftix::actors::snapshot_sender::STALL_TIMEOUT - Duration::from_secs(2),
        "the restarted follower waited {took:?} for the transfer to go on"
    );
    assert_eq!(
        c.statuses().await[&1].term,
        term,
        "no election may happen for the resumption to be measured (machine overloaded?)"
    );
    let resent = proxy.forwarded() - before_restart;
    assert!(
        resent < size - held[0] / 2,
        "the transfer resumed at {} rather than starting over: {resent} bytes sent after the restart for a snapshot of {size}",
        held[0]
    );
    assert!(counter(&c.nodes[&3].handle, |m| &m.snapshots_installed) >= 1);
    assert!(
        partial_files(&dir).is_empty(),
        "the partial file became the snapshot"
    );
    let log = load::WriteLog {
        attempted: acked.keys().cloned().collect(),
        acked,
        ..Default::default()
    };
    for &id in &ids {
        check_writes(&c, id, "big", &log);
    }
    check_same_state(&c, &ids, "big");
    c.shutdown().await;
}

#[actix_rt::test]
async fn a_follower_restarted_right_after_an_install_recovers_it() {
    let (mut c, _proxy, acked, _) = big_snapshot_for_node_3(160, 64 << 10).await;
    c.restart_node(3).await;
    // Stop it as soon as the snapshot is installed: the state machine restore (or the log
    // reset) may not have finished; recovery at the next start must complete it.
    wait_until_async(
        Duration::from_secs(30),
        "node 3 to install a snapshot",
        || async {
            let installed = counter(&c.nodes[&3].handle, |m| &m.snapshots_installed);
            check(installed > 0, installed)
        },
    )
    .await;
    let applied_at_stop = c.nodes[&3].kv.applied_index().expect("applied");
    c.stop_node(3).await;
    c.restart_node(3).await;
    let ids = c.ids();
    wait_converged(&c, &ids, Duration::from_secs(30)).await;
    eprintln!("stopped with the state machine at {applied_at_stop}");
    assert!(
        partial_files(&c.data_dir(3)).is_empty(),
        "the received file became the snapshot"
    );
    let log = load::WriteLog {
        attempted: acked.keys().cloned().collect(),
        acked,
        ..Default::default()
    };
    for &id in &ids {
        check_writes(&c, id, "big", &log);
    }
    check_same_state(&c, &ids, "big");
    // And it keeps replicating after recovery.
    let leader = cluster::agreed_leader(&c.statuses().await, &ids).expect("leader");
    let more = load::write_all(&c.nodes[&leader].handle, "more", 20, 16, 20).await;
    wait_converged(&c, &ids, Duration::from_secs(10)).await;
    for (k, v) in &more {
        assert_eq!(c.nodes[&3].kv.get(k).expect("read").as_ref(), Some(v));
    }
    c.shutdown().await;
}

/// The snapshot files (`snap-*.snap`) in a node's snapshot dir.
fn snapshot_files(data_dir: &Path) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(data_dir.join("snapshots")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("snap-") && n.ends_with(".snap"))
        .collect();
    names.sort();
    names
}

#[actix_rt::test]
async fn a_follower_sent_a_snapshot_it_already_installed_keeps_it() {
    use raftix::messages::node::PeerSnapshotFrame;
    use raftix::transport::{
        serve_peers, Inbound, PeerListenerConfig, SnapshotBody, SnapshotFrame,
    };

    // Node 99 is this test: a learner that never answers the leader, but can replay a snapshot
    // transfer to a follower (as the leader does when the follower's final acknowledgement was
    // lost, or arrived after the leader gave up) and hear the follower's acknowledgements.
    const FAKE: NodeId = 99;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let fake_addr = listener.local_addr().expect("addr").to_string();
    let (acks_tx, mut acks) = tokio::sync::mpsc::unbounded_channel();
    let sink: raftix::transport::InboundSink = std::sync::Arc::new(move |inbound| {
        if let Inbound::Snapshot(frame) = inbound {
            let _ = acks_tx.send(frame);
        }
        None
    });
    let cfg = PeerListenerConfig::new(
        FAKE,
        raftix::config::DEFAULT_CLUSTER_NAME.to_string(),
        16 << 20,
    );
    let fake = actix_rt::spawn(async move {
        let _ = serve_peers(listener, cfg, sink).await;
    });
    let mut c = TestCluster::start_with(3, |cfg| {
        cfg.snapshot_entries = 0;
        cfg.snapshot_keep = 5;
        cfg.cluster.insert(FAKE, fake_addr.clone());
        cfg.learners.insert(FAKE);
    })
    .await;
    let voters = set(&[1, 2, 3]);
    let leader = c.wait_leader(&voters, ELECTION).await;
    let follower = *voters.iter().find(|&&id| id != leader).expect("follower");

    // The follower catches up from the leader's snapshot.
    c.stop_node(follower).await;
    let handle = c.nodes[&leader].handle.clone();
    let acked = load::write_all(&handle, "k", 200, 256, 50).await;
    let snap = handle.snapshot().await.expect("snapshot");
    c.restart_node(follower).await;
    wait_converged(&c, &voters, Duration::from_secs(10)).await;
    let node = &c.nodes[&follower];
    assert_eq!(counter(&node.handle, |m| &m.snapshots_installed), 1);
    let dir = c.data_dir(follower);
    let installed = snapshot_files(&dir);
    assert_eq!(installed.len(), 1, "{installed:?}");

    // The same snapshot again, whole.
    let info = raftix::storage::read_snapshot_info(Path::new(&snap.path)).expect("info");
    let bytes = std::fs::read(&snap.path).expect("read snapshot");
    let term = c.statuses().await[&follower].term;
    let frame = |offset: u64, data: bytes::Bytes| SnapshotFrame {
        from: FAKE,
        to: follower,
        term,
        last: info.meta.last,
        body: SnapshotBody::Chunk {
            total: info.size,
            file_crc: info.crc,
            offset,
            chunk_crc: crc32fast::hash(&data),
            data,
        },
    };
    let addr = node.handle.addr();
    addr.do_send(PeerSnapshotFrame(frame(0, bytes::Bytes::new())));
    let mut offset = 0;
    for chunk in bytes.chunks(64 << 10) {
        addr.do_send(PeerSnapshotFrame(frame(
            offset,
            bytes::Bytes::copy_from_slice(chunk),
        )));
        offset += chunk.len() as u64;
    }
    // Wait for the follower's final answer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ack = tokio::time::timeout_at(deadline, acks.recv())
            .await
            .expect("the follower answers the replayed transfer")
            .expect("open");
        if let SnapshotBody::Ack { done: true, .. } = ack.body {
            assert_eq!(ack.last, info.meta.last);
            break;
        }
    }
    assert_eq!(
        snapshot_files(&dir),
        installed,
        "the follower's snapshot file is still there"
    );

    // It still restarts from it and holds every write.
    c.stop_node(follower).await;
    c.restart_node(follower).await;
    wait_converged(&c, &voters, Duration::from_secs(10)).await;
    let log = load::WriteLog {
        attempted: acked.keys().cloned().collect(),
        acked,
        ..Default::default()
    };
    for &id in &voters {
        check_writes(&c, id, "k", &log);
    }
    c.shutdown().await;
    fake.abort();
}
