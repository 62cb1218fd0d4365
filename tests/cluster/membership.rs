//! Membership changes in a running cluster (the real actor runtime, LMDB in temp dirs, TCP on
//! loopback): learners never count for quorum and never lead, the cluster grows and shrinks one
//! server at a time under write load and partitions, and a removed node (the leader included)
//! steps aside without disturbing the others. The partition schedule is seeded: a failure prints
//! the seed; rerun one with `RAFTIX_MEMBERSHIP_SEED=N cargo test --test cluster_membership`.

use crate::support::cluster;
use crate::support::load;
use crate::support::rng;
use crate::support::wait::{check, wait_until_async};

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cluster::{agreed_leader, TestCluster};
use load::{check_same_state, check_writes, counter, find_leader, wait_converged, Load};
use raftix::config::NodeConfig;
use raftix::core::{ConfigChange, NodeId, Role};
use raftix::messages::node::{ChangeResult, ClientError};
use rng::Rng;

const ELECTION: Duration = Duration::from_secs(5);
/// The longest election timeout of the test nodes (see `support/cluster.rs`).
const ELECTION_TIMEOUT_MAX: Duration = Duration::from_millis(600);

fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
    ids.iter().copied().collect()
}

/// Asks whoever leads to make `change`, retrying while the cluster is not ready for it
/// (another change in progress, a learner not caught up, no leader, an unknown outcome:
/// every change here is idempotent). Panics after `timeout` with the last refusal.
async fn change(c: &TestCluster, change: ConfigChange, timeout: Duration) -> ChangeResult {
    let deadline = Instant::now() + timeout;
    let mut hint = None;
    let mut last: Option<ClientError> = None;
    loop {
        if Instant::now() > deadline {
            panic!(
                "{change:?} not made in {timeout:?}; last refusal: {last:?}; statuses: {:#?}",
                c.statuses().await
            );
        }
        let Some(leader) = find_leader(&c.handles, hint).await else {
            actix_rt::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        match leader.change_membership(change.clone()).await {
            Ok(done) => return done,
            Err(ClientError::NotLeader { leader_id, .. }) => hint = leader_id,
            Err(
                err @ (ClientError::Unavailable(_)
                | ClientError::Conflict(_)
                | ClientError::OutcomeUnknown
                | ClientError::ProposalDropped),
            ) => {
                hint = None;
                last = Some(err);
                // Not ready yet (in progress, not caught up): ask again shortly.
                actix_rt::time::sleep(Duration::from_millis(20)).await;
            }
            Err(err) => panic!("{change:?} refused: {err:?}"),
        }
    }
}

/// Polls for `how_long` and checks `ok` on every status seen meanwhile (for things that must
/// NOT happen over a period, such as an election).
async fn holds_for(
    c: &TestCluster,
    what: &str,
    how_long: Duration,
    ok: impl Fn(&std::collections::BTreeMap<NodeId, raftix::messages::node::NodeStatus>) -> bool,
) {
    let end = Instant::now() + how_long;
    while Instant::now() < end {
        let s = c.statuses().await;
        assert!(ok(&s), "{what} no longer holds: {s:#?}");
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Prints the seed if the test panics (wherever it panics).
struct SeedGuard(u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "failed with seed {}: rerun with RAFTIX_MEMBERSHIP_SEED={}",
                self.0, self.0
            );
        }
    }
}

/// The seed of schedule `n` (1, 2): `n`, unless `RAFTIX_MEMBERSHIP_SEED` names one (then
/// schedule 1 runs it and schedule 2 is skipped).
fn seed(n: u64) -> Option<u64> {
    match std::env::var("RAFTIX_MEMBERSHIP_SEED") {
        Ok(one) => (n == 1).then(|| one.parse().expect("RAFTIX_MEMBERSHIP_SEED is a number")),
        Err(_) => Some(n),
    }
}

#[actix_rt::test]
async fn a_learner_never_counts_for_quorum_and_never_leads() {
    let c = TestCluster::start_with(4, |cfg| {
        cfg.learners = set(&[4]);
        cfg.proposal_timeout_ms = 2000;
    })
    .await;
    let voters = set(&[1, 2, 3]);
    let all = c.ids();
    c.wait_until("everyone follows one voter", ELECTION, |s| {
        agreed_leader(s, &all).is_some_and(|l| voters.contains(&l))
    })
    .await;
    let s = c.statuses().await;
    let leader = agreed_leader(&s, &all).expect("leader");
    assert_eq!(s[&4].members, vec![1, 2, 3]);
    assert_eq!(s[&4].learners, vec![4]);
    assert!(
        matches!(
            c.nodes[&leader].handle.transfer_leader(Some(4)).await,
            Err(ClientError::Invalid(_))
        ),
        "leadership cannot be handed to a learner"
    );
    c.put(leader, "before", "1").await.expect("write");
    wait_converged(&c, &all, ELECTION).await;
    assert_eq!(
        c.nodes[&4].kv.get("before").expect("read").as_deref(),
        Some(&b"1"[..]),
        "the learner receives the log"
    );

    // Two of the three voters cut off (from everyone, each other included): leader and
    // learner are half of the nodes but one voter of three, which is no quorum.
    let cut: BTreeSet<NodeId> = voters.iter().copied().filter(|&v| v != leader).collect();
    let before = c.statuses().await;
    c.isolate(&cut).await;
    let stuck = c.put(leader, "minority", "x").await;
    cluster::assert_not_committed(&stuck, "leader + learner");
    let s = c.statuses().await;
    for id in [leader, 4] {
        assert_eq!(
            s[&id].commit, before[&id].commit,
            "node {id} committed without a quorum of voters"
        );
        assert_eq!(s[&id].applied, before[&id].applied);
        assert_eq!(c.nodes[&id].kv.get("minority").expect("read"), None);
    }
    assert_ne!(s[&4].role, Role::Leader);
    assert_eq!(s[&4].term, before[&4].term, "the learner never campaigns");

    c.heal().await;
    let leader = c.wait_leader(&voters, ELECTION).await;
    c.put(leader, "after", "2")
        .await
        .expect("healed voters commit");
    wait_converged(&c, &all, ELECTION).await;
    assert_eq!(
        c.nodes[&4].kv.get("after").expect("read").as_deref(),
        Some(&b"2"[..])
    );

    // The learner alone, with its election timer running for several timeouts: it stays a
    // follower in the same term, while the voters go on without it.
    let term = c.statuses().await[&4].term;
    c.isolate(&set(&[4])).await;
    c.put(leader, "without-learner", "3")
        .await
        .expect("the voters commit without the learner");
    holds_for(
        &c,
        "the isolated learner stays a follower",
        ELECTION_TIMEOUT_MAX * 4,
        |s| s[&4].role == Role::Follower && s[&4].term == term,
    )
    .await;
    c.heal().await;
    wait_converged(&c, &all, ELECTION).await;
    assert_eq!(
        c.nodes[&4]
            .kv
            .get("without-learner")
            .expect("read")
            .as_deref(),
        Some(&b"3"[..])
    );
    c.shutdown().await;
}

fn tune(cfg: &mut NodeConfig) {
    // Frequent snapshots: they record configurations too, and new members catch up from one.
    cfg.snapshot_entries = 50;
    cfg.snapshot_keep = 10;
    cfg.proposal_timeout_ms = 3000;
}

/// Voters as the leader (or any node) sees them.
async fn voters(c: &TestCluster) -> BTreeSet<NodeId> {
    let leader = find_leader(&c.handles, None).await;
    let s = match leader {
        Some(h) => h.status().await.expect("status"),
        None => c.statuses().await.into_values().next().expect("a node"),
    };
    s.members.into_iter().collect()
}

/// With probability `percent`, cuts off one random voter (other than `spare`) from everyone;
/// returns it.
async fn maybe_partition(
    c: &TestCluster,
    rng: &mut Rng,
    percent: u64,
    spare: Option<NodeId>,
) -> Option<NodeId> {
    if !rng.chance(percent) {
        return None;
    }
    let candidates: Vec<NodeId> = voters(c)
        .await
        .into_iter()
        .filter(|&v| Some(v) != spare)
        .collect();
    let victim = candidates[rng.below(candidates.len() as u64) as usize];
    eprintln!("partition: node {victim} cut off");
    c.partition(&set(&[victim])).await;
    Some(victim)
}

async fn grow_and_shrink(seed: u64) {
    let _guard = SeedGuard(seed);
    let mut rng = Rng(seed);
    let mut c = TestCluster::start_with(3, tune).await;
    let original = c.ids();
    c.wait_leader(&original, ELECTION).await;
    let load = Load::start(c.handles.clone(), 6, "g", 64, None);
    load.wait_acked(50, ELECTION).await;
    const CHANGE: Duration = Duration::from_secs(30);
    // Every node compacted its log: new members must start from a snapshot.
    wait_until_async(ELECTION, "a snapshot on every node", || async {
        let taken: Vec<u64> = c
            .nodes
            .values()
            .map(|n| counter(&n.handle, |m| &m.snapshots_taken))
            .collect();
        check(!taken.contains(&0), taken)
    })
    .await;
    let mut added = Vec::new();

    // Grow 3 -> 5, one learner at a time, with a random voter cut off during some changes.
    for _ in 0..2 {
        let members = voters(&c).await;
        let id = c.add_node(&members, tune).await;
        added.push(id);
        let cut = maybe_partition(&c, &mut rng, 60, None).await;
        let addr = c.peer_addr(id);
        let added = change(&c, ConfigChange::AddLearner { id, addr }, CHANGE).await;
        assert!(added.changed || added.membership.learners.contains(&id));
        if cut.is_some() && rng.chance(50) {
            c.heal().await;
        }
        change(&c, ConfigChange::Promote { id }, CHANGE).await;
        c.heal().await;
        let acked = load.acked();
        load.wait_acked(acked + 30, ELECTION).await;
    }
    let five = voters(&c).await;
    assert_eq!(five.len(), 5, "grown to five voters: {five:?}");

    // Five voters: any two may be cut off and writes go on.
    let pair: Vec<NodeId> = {
        let v: Vec<NodeId> = five.iter().copied().collect();
        let a = rng.below(5) as usize;
        let b = (a + 1 + rng.below(4) as usize) % 5;
        vec![v[a], v[b]]
    };
    eprintln!("partition: nodes {pair:?} cut off");
    c.partition(&pair.iter().copied().collect()).await;
    let acked = load.acked();
    load.wait_acked(acked + 30, 2 * ELECTION).await;
    c.heal().await;

    // Shrink 5 -> 3: remove two original nodes, the first while it leads.
    let leader = c.wait_leader(&five, ELECTION).await;
    let first = if original.contains(&leader) {
        leader
    } else {
        let pick: Vec<NodeId> = original.iter().copied().collect();
        let to = pick[rng.below(3) as usize];
        // A transfer right after a partition heals may time out while the target catches up
        // (the leader then keeps office): that is a documented outcome, so try again.
        let mut tries = 0;
        loop {
            tries += 1;
            let leader = c.wait_leader(&five, ELECTION).await;
            match c.nodes[&leader].handle.transfer_leader(Some(to)).await {
                Ok(new) => break assert_eq!(new, to),
                Err(err) if tries < 3 => eprintln!("transfer to {to} (try {tries}): {err}"),
                Err(err) => panic!("transfer to {to} failed {tries} times, last: {err}"),
            }
        }
        c.wait_leader(&five, ELECTION).await
    };
    assert!(original.contains(&first));
    let term = c.statuses().await[&first].term;
    let cut = maybe_partition(&c, &mut rng, 60, Some(first)).await;
    let removed = change(&c, ConfigChange::Remove { id: first }, CHANGE).await;
    assert!(!removed.membership.contains(first) || !removed.changed);
    let rest: BTreeSet<NodeId> = five.iter().copied().filter(|&v| v != first).collect();
    let connected: BTreeSet<NodeId> = rest.iter().copied().filter(|&v| Some(v) != cut).collect();
    let new_leader = c.wait_leader(&connected, ELECTION).await;
    assert_ne!(new_leader, first);
    let s = c.statuses().await;
    assert_ne!(
        s[&first].role,
        Role::Leader,
        "the removed leader stepped down"
    );
    assert!(s[&new_leader].term >= term);
    c.heal().await;

    let second = {
        let left: Vec<NodeId> = original.iter().copied().filter(|&v| v != first).collect();
        left[rng.below(left.len() as u64) as usize]
    };
    let cut = maybe_partition(&c, &mut rng, 60, None).await;
    change(&c, ConfigChange::Remove { id: second }, CHANGE).await;
    if cut.is_some() {
        c.heal().await;
    }
    let acked = load.acked();
    load.wait_acked(acked + 30, 2 * ELECTION).await;
    let log = load.stop().await;
    eprintln!(
        "seed {seed}: {} writes acknowledged of {}; failures {:?}",
        log.acked.len(),
        log.attempted.len(),
        log.failures
    );

    let last: BTreeSet<NodeId> = rest.iter().copied().filter(|&v| v != second).collect();
    assert_eq!(last.len(), 3);
    wait_converged(&c, &last, 2 * ELECTION).await;
    let s = c.statuses().await;
    for id in &last {
        assert_eq!(
            s[id].members.iter().copied().collect::<BTreeSet<_>>(),
            last,
            "node {id} sees other voters"
        );
        assert!(s[id].learners.is_empty());
        check_writes(&c, *id, "g", &log);
    }
    check_same_state(&c, &last, "g");
    for id in added {
        let installed = counter(&c.nodes[&id].handle, |m| &m.snapshots_installed);
        assert!(installed >= 1, "node {id} joined without a snapshot");
    }
    // Each final member restarts from its data dir (snapshot, compacted log, configuration)
    // and rejoins the same configuration.
    for &id in &last {
        c.stop_node(id).await;
        c.restart_node(id).await;
        wait_converged(&c, &last, 2 * ELECTION).await;
        let s = c.statuses().await;
        assert_eq!(
            s[&id].members.iter().copied().collect::<BTreeSet<_>>(),
            last,
            "node {id} restarted into another configuration"
        );
        check_writes(&c, id, "g", &log);
    }
    let s = c.statuses().await;
    for id in [first, second] {
        assert_ne!(s[&id].role, Role::Leader, "removed node {id} leads");
    }
    c.shutdown().await;
}

#[actix_rt::test]
async fn the_cluster_grows_to_five_and_shrinks_to_three_under_load_and_partitions() {
    if let Some(seed) = seed(1) {
        grow_and_shrink(seed).await;
    }
}

#[actix_rt::test]
async fn the_cluster_grows_and_shrinks_on_another_schedule() {
    if let Some(seed) = seed(2) {
        grow_and_shrink(seed).await;
    }
}

/// Terms and leader of `ids` stay the same for a few election timeouts.
async fn stays_stable(c: &TestCluster, ids: &BTreeSet<NodeId>) {
    let before = c.statuses().await;
    let leader = agreed_leader(&before, ids).expect("a leader");
    holds_for(
        c,
        "the remaining members' term and leader",
        ELECTION_TIMEOUT_MAX * 4,
        |s| {
            ids.iter()
                .all(|id| s[id].term == before[id].term && s[id].leader == Some(leader))
        },
    )
    .await;
}

#[actix_rt::test]
async fn a_removed_leader_steps_down_and_leaves_the_others_alone() {
    let c = TestCluster::start(3).await;
    let all = c.ids();
    let old = c.wait_leader(&all, ELECTION).await;
    let load = Load::start(c.handles.clone(), 4, "r", 32, None);
    load.wait_acked(50, ELECTION).await;
    let term = c.statuses().await[&old].term;

    let done = change(&c, ConfigChange::Remove { id: old }, ELECTION).await;
    assert!(done.changed);
    let rest: BTreeSet<NodeId> = all.iter().copied().filter(|&v| v != old).collect();
    let new = c.wait_leader(&rest, ELECTION).await;
    assert_ne!(new, old);
    let s = c.statuses().await;
    assert_ne!(
        s[&old].role,
        Role::Leader,
        "the removed leader stepped down"
    );
    assert!(s[&new].term > term);
    for id in &rest {
        assert_eq!(s[id].members.iter().copied().collect::<BTreeSet<_>>(), rest);
    }
    // Writes go on under the new leader.
    let acked = load.acked();
    load.wait_acked(acked + 50, ELECTION).await;
    let log = load.stop().await;

    // The removed node keeps running: the others' term and leader do not move.
    stays_stable(&c, &rest).await;
    let s = c.statuses().await;
    assert_ne!(s[&old].role, Role::Leader);
    wait_converged(&c, &rest, ELECTION).await;
    for id in &rest {
        check_writes(&c, *id, "r", &log);
    }
    check_same_state(&c, &rest, "r");
    c.put(new, "after", "1").await.expect("write");
    c.shutdown().await;
}

#[actix_rt::test]
async fn a_follower_removed_while_cut_off_does_not_disturb_the_cluster() {
    let c = TestCluster::start(3).await;
    let all = c.ids();
    let leader = c.wait_leader(&all, ELECTION).await;
    let victim = *all.iter().find(|&&v| v != leader).expect("follower");
    c.put(leader, "before", "1").await.expect("write");
    // The victim never hears of its removal: it still thinks it is a voter of three.
    c.partition(&set(&[victim])).await;
    change(&c, ConfigChange::Remove { id: victim }, ELECTION).await;
    let rest: BTreeSet<NodeId> = all.iter().copied().filter(|&v| v != victim).collect();
    c.put(leader, "during", "2")
        .await
        .expect("two of two commit");
    // Let it time out and campaign while cut off, then reconnect it.
    holds_for(
        &c,
        "the cut-off victim does not lead",
        ELECTION_TIMEOUT_MAX * 2,
        |s| s[&victim].role != Role::Leader,
    )
    .await;
    c.heal().await;
    stays_stable(&c, &rest).await;
    let s = c.statuses().await;
    assert_eq!(
        s[&victim].members.len(),
        3,
        "it never learnt of its removal"
    );
    assert_ne!(s[&victim].role, Role::Leader);
    c.put(leader, "after", "3").await.expect("write");
    wait_converged(&c, &rest, ELECTION).await;
    c.shutdown().await;
}

#[actix_rt::test]
async fn writes_left_pending_on_a_removed_leader_are_answered_at_once() {
    // The default proposal timeout (5 s): answers must come well before it.
    let c = TestCluster::start(3).await;
    let all = c.ids();
    let old = c.wait_leader(&all, ELECTION).await;
    let load = Load::start(c.handles.clone(), 16, "p", 32, None);
    load.wait_acked(100, ELECTION).await;
    // The removal is appended first, then these writes (proposed once the mailbox drained):
    // they are replicated, but the removed leader steps down when the removal commits and hears
    // nothing more, so it cannot know their outcome.
    let old_handle = c.nodes[&old].handle.clone();
    let removal = {
        let h = old_handle.clone();
        actix_rt::spawn(async move { h.change_membership(ConfigChange::Remove { id: old }).await })
    };
    let writes: Vec<_> = (0..64)
        .map(|i| {
            let h = old_handle.clone();
            let cmd = raftix::storage::KvCommand::Put {
                key: format!("after-removal{i}"),
                value: bytes::Bytes::from_static(b"x"),
            };
            actix_rt::spawn(async move { h.submit(cmd.encode()).await })
        })
        .collect();
    let started = Instant::now();
    removal.await.expect("join").expect("the removal commits");
    let mut outcomes = std::collections::BTreeMap::<String, u32>::new();
    for w in writes {
        let r = w.await.expect("join");
        let kind = match r {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("{e:?}")
                .split(['(', ' ', '{'])
                .next()
                .unwrap_or_default()
                .to_string(),
        };
        *outcomes.entry(kind).or_default() += 1;
    }
    let took = started.elapsed();
    eprintln!("answers after {took:?}: {outcomes:?}");
    assert!(
        took < Duration::from_secs(3),
        "writes pending on the removed leader were answered after {took:?}: {outcomes:?}"
    );
    load.stop().await;
    let rest: BTreeSet<NodeId> = all.iter().copied().filter(|&v| v != old).collect();
    wait_converged(&c, &rest, ELECTION).await;
    let id = *rest.first().expect("member");
    let committed = load::dump(&c.nodes[&id].kv, "after-removal").len();
    eprintln!("{committed} of the 64 writes committed by the remaining members");
    c.shutdown().await;
}
