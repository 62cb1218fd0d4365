//! Node health states (ACTIVE / SYNCING / DEGRADED) under induced lag, partition and a slow disk.

use crate::support::cluster;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use cluster::TestCluster;
use raftix::core::NodeId;
use raftix::messages::node::{GetCluster, HealthState, NodeStatus};
use raftix::storage::KvCommand;

const WAIT: Duration = Duration::from_secs(10);

fn put(key: String, value: Bytes) -> Bytes {
    KvCommand::Put { key, value }.encode()
}

/// The reason a node's health gives for its state, or "" when it gives none.
fn reason_of(status: &NodeStatus) -> &str {
    status.health.reason.as_deref().unwrap_or_default()
}

/// Waits until node `id` reports health `state` (`what` names the wait), then asserts that the reason it gives mentions
/// `because`; returns the statuses it was seen in.
async fn wait_for_health(
    c: &TestCluster,
    id: NodeId,
    state: HealthState,
    what: &str,
    because: &str,
) -> BTreeMap<NodeId, NodeStatus> {
    let s = c
        .wait_until(what, WAIT, |s| s[&id].health.state == state)
        .await;
    assert!(reason_of(&s[&id]).contains(because), "{:?}", s[&id].health);
    s
}

#[actix_rt::test]
async fn a_slow_disk_makes_the_node_degraded_with_the_reason() {
    let c = TestCluster::start_with(1, |cfg| cfg.slow_disk_ms = 1).await;
    let leader = c.wait_leader(&c.ids(), WAIT).await;
    // A 1 MiB write cannot be made durable in under a millisecond.
    let value = Bytes::from(vec![7u8; 1 << 20]);
    c.nodes[&leader]
        .handle
        .submit(put("big".into(), value))
        .await
        .expect("write");
    let s = c.statuses().await;
    assert_eq!(
        s[&leader].health.state,
        HealthState::Degraded,
        "{:?}",
        s[&leader].health
    );
    assert!(reason_of(&s[&leader]).contains("slow disk"));
    c.shutdown().await;
}

#[actix_rt::test]
async fn a_normal_node_is_active() {
    let c = TestCluster::start(3).await;
    let leader = c.wait_leader(&c.ids(), WAIT).await;
    c.nodes[&leader]
        .handle
        .submit(put("k".into(), Bytes::from_static(b"v")))
        .await
        .expect("write");
    let s = c
        .wait_until("every node ACTIVE", WAIT, |s| {
            s.values().all(|x| x.health.state == HealthState::Active)
        })
        .await;
    assert!(s.values().all(|x| x.health.reason.is_none()));
    c.shutdown().await;
}

#[actix_rt::test]
async fn a_cut_off_follower_is_degraded_then_recovers() {
    let c = TestCluster::start(3).await;
    let leader = c.wait_leader(&c.ids(), WAIT).await;
    let lonely = *c.ids().iter().find(|&&id| id != leader).expect("follower");
    c.partition(&BTreeSet::from([lonely])).await;
    wait_for_health(
        &c,
        lonely,
        HealthState::Degraded,
        "the cut-off follower is DEGRADED",
        "no leader",
    )
    .await;
    // The leader sees it as DEGRADED (unreachable) too, and itself as ACTIVE (it keeps a quorum).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let view = c.nodes[&leader]
            .handle
            .addr()
            .send(GetCluster)
            .await
            .expect("view");
        let member = view
            .members
            .iter()
            .find(|m| m.id == lonely)
            .expect("member");
        let me = view.members.iter().find(|m| m.is_self).expect("self");
        if member.state == Some(HealthState::Degraded) {
            assert_eq!(me.state, Some(HealthState::Active));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "leader never saw {lonely} as DEGRADED: {view:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    c.heal().await;
    c.wait_until("the follower is ACTIVE again", WAIT, |s| {
        s[&lonely].health.state == HealthState::Active
    })
    .await;
    c.shutdown().await;
}

#[actix_rt::test]
async fn a_follower_far_behind_is_syncing_while_it_catches_up() {
    // One entry per message, one in flight: catching up on 1500 entries takes many round trips.
    let c = TestCluster::start_with(3, |cfg| {
        cfg.max_entries_per_msg = 1;
        cfg.max_inflight = 1;
        cfg.syncing_lag = 100;
    })
    .await;
    let leader = c.wait_leader(&c.ids(), WAIT).await;
    let lagger = *c.ids().iter().find(|&&id| id != leader).expect("follower");
    c.partition(&BTreeSet::from([lagger])).await;
    let majority: BTreeSet<u64> = c.ids().into_iter().filter(|&id| id != lagger).collect();
    let leader = c.wait_leader(&majority, WAIT).await;
    let node = c.nodes[&leader].handle.clone();
    for wave in 0..15 {
        let writes =
            (0..100).map(|i| node.submit(put(format!("k{wave}-{i}"), Bytes::from_static(b"v"))));
        for r in futures::future::join_all(writes).await {
            r.expect("majority commits");
        }
    }
    c.heal().await;
    let s = wait_for_health(
        &c,
        lagger,
        HealthState::Syncing,
        "the lagging follower reports SYNCING",
        "behind the leader",
    )
    .await;
    assert!(s[&lagger].lag > 100);
    c.wait_until(
        "the follower is ACTIVE once caught up",
        Duration::from_secs(30),
        |s| {
            s[&lagger].health.state == HealthState::Active
                && s[&lagger].applied == s[&leader].commit
        },
    )
    .await;
    c.shutdown().await;
}
