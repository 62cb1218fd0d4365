//! Actor-level cluster tests: the real runtime (node, timer, log store, applier, replicators,
//! TCP peer links) with real LMDB in temp dirs, several nodes in one actix System, real time.
//! Partitions are injected at each node's message boundary (`RaftHandle::block_peers`).

use crate::support::cluster;

use std::collections::BTreeSet;
use std::time::Duration;

use actix::{Actor, Context, Handler};
use cluster::TestCluster;
use raftix::core::Role;
use raftix::messages::node::{ClientError, RoleChange};
use tokio::sync::mpsc;

/// Forwards role changes into a channel so a test can await them.
struct RoleWatcher(mpsc::UnboundedSender<RoleChange>);

impl Actor for RoleWatcher {
    type Context = Context<Self>;
}

impl Handler<RoleChange> for RoleWatcher {
    type Result = ();
    fn handle(&mut self, msg: RoleChange, _: &mut Context<Self>) {
        let _ = self.0.send(msg);
    }
}

const ELECTION: Duration = Duration::from_secs(5);

fn set(ids: &[u64]) -> BTreeSet<u64> {
    ids.iter().copied().collect()
}

async fn elects_exactly_one_leader(n: u64) {
    let c = TestCluster::start(n).await;
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    let s = c.statuses().await;
    let leaders = s.values().filter(|x| x.role == Role::Leader).count();
    assert_eq!(leaders, 1, "exactly one leader: {s:#?}");
    // The new leader's no-op commits and is applied everywhere.
    c.wait_until("no-op applied everywhere", ELECTION, |s| {
        s.values()
            .all(|x| x.applied >= 1 && x.commit == s[&leader].commit)
    })
    .await;
    c.shutdown().await;
}

#[actix_rt::test]
async fn three_nodes_elect_one_leader() {
    elects_exactly_one_leader(3).await;
}

#[actix_rt::test]
async fn five_nodes_elect_one_leader() {
    elects_exactly_one_leader(5).await;
}

#[actix_rt::test]
async fn writes_commit_and_apply_on_every_node() {
    let c = TestCluster::start(3).await;
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    let mut last = 0;
    for i in 0..50 {
        let done = c
            .put(leader, &format!("k{i}"), &format!("v{i}"))
            .await
            .expect("write");
        assert!(done.log_id.index > last, "indexes increase");
        last = done.log_id.index;
    }
    c.wait_until("all applied", ELECTION, |s| {
        s.values().all(|x| x.applied >= last)
    })
    .await;
    for node in c.nodes.values() {
        assert_eq!(
            node.kv.get("k49").expect("read").as_deref(),
            Some(&b"v49"[..])
        );
    }
    // A follower refuses and names the leader.
    let follower = *c.ids().iter().find(|&&id| id != leader).expect("follower");
    match c.put(follower, "x", "y").await {
        Err(ClientError::NotLeader { leader_id, .. }) => assert_eq!(leader_id, Some(leader)),
        other => panic!("expected NotLeader, got {other:?}"),
    }
    c.shutdown().await;
}

#[actix_rt::test]
async fn a_new_leader_is_elected_after_the_leader_stops() {
    let c = TestCluster::start(3).await;
    let old = c.wait_leader(&c.ids(), ELECTION).await;
    // Subscribers get the current role at once and every change after.
    let survivor = *c.ids().iter().find(|&&id| id != old).expect("follower");
    let (tx, mut rx) = mpsc::unbounded_channel();
    c.nodes[&survivor]
        .handle
        .subscribe_roles(RoleWatcher(tx).start().recipient());
    let first = tokio::time::timeout(ELECTION, rx.recv())
        .await
        .expect("initial role")
        .expect("open");
    assert_eq!(
        (first.node, first.role, first.leader),
        (survivor, Role::Follower, Some(old))
    );
    let old_term = c.statuses().await[&old].term;
    c.put(old, "before", "1").await.expect("write");
    c.nodes[&old].handle.shutdown().await;
    let rest: BTreeSet<u64> = c.ids().into_iter().filter(|&id| id != old).collect();
    let new = c.wait_leader(&rest, ELECTION).await;
    assert_ne!(new, old);
    let s = c.statuses().await;
    assert!(
        s[&new].term > old_term,
        "re-election happens in a later term"
    );
    c.put(new, "after", "2")
        .await
        .expect("the surviving majority commits");
    c.shutdown().await;
}

#[actix_rt::test]
async fn minority_cannot_commit_while_majority_goes_on_and_healing_converges() {
    let c = TestCluster::start(5).await;
    let old = c.wait_leader(&c.ids(), ELECTION).await;
    let others: Vec<u64> = c.ids().into_iter().filter(|&id| id != old).collect();
    let minority = set(&[old, others[0]]);
    let majority: BTreeSet<u64> = c.ids().difference(&minority).copied().collect();
    c.partition(&minority).await;

    // The old leader may still accept the proposal, but it can never commit.
    let stuck = c.put(old, "minority", "lost").await;
    cluster::assert_not_committed(&stuck, "a minority");
    let new = c.wait_leader(&majority, ELECTION).await;
    for i in 0..20 {
        c.put(new, &format!("m{i}"), "ok")
            .await
            .expect("majority commits");
    }
    // Check-quorum: the isolated old leader stepped down.
    let s = c.statuses().await;
    assert_ne!(
        s[&old].role,
        Role::Leader,
        "isolated leader must step down: {:?}",
        s[&old]
    );

    c.heal().await;
    let s = c
        .wait_until("convergence after healing", ELECTION, |s| {
            let commit = s[&new].commit;
            s.values()
                .all(|x| x.applied == commit && x.last_log_index == s[&new].last_log_index)
        })
        .await;
    assert!(s.values().all(|x| x.term == s[&new].term));
    for node in c.nodes.values() {
        assert_eq!(
            node.kv.get("minority").expect("read"),
            None,
            "the minority write was overwritten"
        );
        assert_eq!(
            node.kv.get("m19").expect("read").as_deref(),
            Some(&b"ok"[..])
        );
    }
    c.shutdown().await;
}

#[actix_rt::test]
async fn a_follower_that_missed_thousands_of_entries_catches_up() {
    let c = TestCluster::start(3).await;
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    let lagger = *c.ids().iter().find(|&&id| id != leader).expect("follower");
    c.partition(&set(&[lagger])).await;
    let majority: BTreeSet<u64> = c.ids().into_iter().filter(|&id| id != lagger).collect();
    let leader = c.wait_leader(&majority, ELECTION).await;
    let term_before = c.statuses().await[&leader].term;
    // 3000 entries, submitted concurrently in waves so group commit keeps this quick.
    let node = c.nodes[&leader].handle.clone();
    for wave in 0..30 {
        let mut writes = Vec::new();
        for i in 0..100 {
            let cmd = raftix::storage::KvCommand::Put {
                key: format!("k{}", wave * 100 + i),
                value: bytes::Bytes::from_static(b"v"),
            };
            let node = node.clone();
            writes.push(async move { node.submit(cmd.encode()).await });
        }
        for r in futures::future::join_all(writes).await {
            r.expect("majority commits");
        }
    }
    let before = c.statuses().await;
    // Heartbeats never wait for fsyncs or big appends: the load caused no election.
    for id in &majority {
        assert_eq!(
            before[id].term, term_before,
            "node {id} saw an election during the load"
        );
        assert_eq!(before[id].leader, Some(leader));
    }
    assert!(
        before[&lagger].applied + 3000 <= before[&leader].commit,
        "the follower really is behind"
    );
    c.heal().await;
    c.wait_until(
        "the lagging follower catches up",
        Duration::from_secs(20),
        |s| {
            s[&lagger].applied == s[&leader].commit
                && s[&lagger].last_log_index == s[&leader].last_log_index
        },
    )
    .await;
    assert_eq!(
        c.nodes[&lagger].kv.get("k2999").expect("read").as_deref(),
        Some(&b"v"[..])
    );
    // Batching: proposals waiting together and persists waiting together share one fsync, so the
    // leader made thousands of entries durable in far fewer fsyncs.
    let m = c.nodes[&leader].handle.metrics();
    let fsyncs = raftix::metrics::NodeMetrics::get(&m.fsyncs);
    let entries = raftix::metrics::NodeMetrics::get(&m.persisted_entries);
    assert!(entries >= 3000, "{entries}");
    assert!(
        fsyncs * 10 < entries,
        "writes should be batched: {fsyncs} fsyncs for {entries} entries"
    );
    c.shutdown().await;
}

#[actix_rt::test]
async fn divergent_uncommitted_entries_are_overwritten() {
    let c = TestCluster::start(3).await;
    let old = c.wait_leader(&c.ids(), ELECTION).await;
    c.put(old, "base", "1").await.expect("write");
    // Isolate the leader and let it append entries nobody else sees.
    c.partition(&set(&[old])).await;
    let old_node = c.nodes[&old].handle.clone();
    let mut doomed = Vec::new();
    for i in 0..5 {
        let cmd = raftix::storage::KvCommand::Put {
            key: format!("doomed{i}"),
            value: bytes::Bytes::from_static(b"x"),
        };
        let node = old_node.clone();
        doomed.push(actix_rt::spawn(
            async move { node.submit(cmd.encode()).await },
        ));
    }
    let rest: BTreeSet<u64> = c.ids().into_iter().filter(|&id| id != old).collect();
    let new = c.wait_leader(&rest, ELECTION).await;
    for i in 0..10 {
        c.put(new, &format!("kept{i}"), "y")
            .await
            .expect("majority commits");
    }
    let diverged = c.statuses().await;
    assert!(
        diverged[&old].last_log_index > diverged[&old].commit,
        "the old leader holds uncommitted entries"
    );
    c.heal().await;
    c.wait_until("old leader's log replaced", ELECTION, |s| {
        s[&old].role == Role::Follower
            && s[&old].last_log_index == s[&new].last_log_index
            && s[&old].last_log_term == s[&new].last_log_term
            && s[&old].applied == s[&new].commit
    })
    .await;
    for r in doomed {
        let outcome = r.await.expect("join");
        assert!(
            outcome.is_err(),
            "an overwritten proposal must not report success: {outcome:?}"
        );
    }
    for node in c.nodes.values() {
        assert_eq!(node.kv.get("doomed0").expect("read"), None);
        assert_eq!(
            node.kv.get("kept9").expect("read").as_deref(),
            Some(&b"y"[..])
        );
    }
    c.shutdown().await;
}

#[actix_rt::test]
async fn leadership_moves_to_the_chosen_node_under_write_load() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let c = Arc::new(TestCluster::start(3).await);
    let old = c.wait_leader(&c.ids(), ELECTION).await;
    let old_term = c.statuses().await[&old].term;
    // A writer keeps writing through whoever leads, recording what was acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let writer = {
        let (c, stop, acked) = (c.clone(), stop.clone(), acked.clone());
        actix_rt::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let statuses = c.statuses().await;
                let leader = statuses
                    .values()
                    .find(|s| s.role == Role::Leader)
                    .map(|s| s.id);
                let Some(leader) = leader else {
                    actix_rt::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                if c.put(leader, &format!("w{n}"), "v").await.is_ok() {
                    acked.lock().expect("acked").push(format!("w{n}"));
                }
            }
        })
    };
    let count = || acked.lock().map(|a| a.len()).unwrap_or(0);
    let wait_writes = |at_least: usize| async move {
        let deadline = std::time::Instant::now() + ELECTION;
        while count() < at_least {
            assert!(
                std::time::Instant::now() < deadline,
                "writes stalled at {}",
                count()
            );
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
    };
    wait_writes(10).await;

    let target = *c.ids().iter().find(|&&id| id != old).expect("follower");
    let new = c.nodes[&old]
        .handle
        .transfer_leader(Some(target))
        .await
        .expect("transfer");
    assert_eq!(new, target);
    let s = c
        .wait_until("everyone follows the target", ELECTION, |s| {
            cluster::agreed_leader(s, &c.ids()) == Some(target)
        })
        .await;
    assert!(s[&target].term > old_term);
    // Without a target: the most up-to-date other voter.
    let next = c.nodes[&target]
        .handle
        .transfer_leader(None)
        .await
        .expect("transfer");
    assert_ne!(next, target);
    c.wait_until("everyone follows the next leader", ELECTION, |s| {
        cluster::agreed_leader(s, &c.ids()) == Some(next)
    })
    .await;
    // Refusals: a follower names the leader; an unknown node is invalid.
    match c.nodes[&target].handle.transfer_leader(Some(old)).await {
        Err(ClientError::NotLeader { leader_id, .. }) => assert_eq!(leader_id, Some(next)),
        other => panic!("expected NotLeader, got {other:?}"),
    }
    assert!(matches!(
        c.nodes[&next].handle.transfer_leader(Some(42)).await,
        Err(ClientError::Invalid(_))
    ));
    let before = count();
    wait_writes(before + 10).await;
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer");
    let acked = acked.lock().expect("acked").clone();
    c.wait_until("all applied", ELECTION, |s| {
        s.values().all(|x| x.applied == s[&next].commit)
    })
    .await;
    for node in c.nodes.values() {
        for key in &acked {
            assert!(
                node.kv.get(key).expect("read").is_some(),
                "acknowledged {key} lost"
            );
        }
    }
    c.shutdown().await;
}
