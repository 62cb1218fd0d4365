//! Tier-4 tests: real `raftix serve` processes on loopback, killed and restarted.

use crate::support::process;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use process::{ProcCluster, PutOutcome};

const LEADER_TIMEOUT: Duration = Duration::from_secs(10);
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(15);

fn tempdir() -> tempfile::TempDir {
    ProcCluster::temp_dir("raftix-proc-")
}

/// One acknowledged write.
#[derive(Clone, Debug)]
struct Ack {
    key: String,
    value: Vec<u8>,
    index: u64,
    term: u64,
}

#[test]
fn acknowledged_writes_survive_kill_9_of_the_leader() {
    kill_9_of_the_leader_scenario(&[]);
}

/// 3 nodes, 4 concurrent clients writing distinct keys through the leader; kill -9 the leader in
/// the middle; every acknowledged write must be readable with its value on every node once the
/// killed node is back and all have applied at least the highest acknowledged index.
fn kill_9_of_the_leader_scenario(flags: &[&str]) {
    const CLIENTS: u64 = 4;
    const ACKS_BEFORE_KILL: usize = 40;
    const ACKS_AFTER_KILL: usize = 40;
    const MIN_RUN: Duration = Duration::from_secs(2);
    const MAX_RUN: Duration = Duration::from_secs(20);

    let mut cluster = ProcCluster::start_with(3, tempdir(), flags);
    let (first_leader, first_term) = cluster.wait_leader(LEADER_TIMEOUT);

    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let indeterminate: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    let workers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let client = cluster.client();
            let (acks, indeterminate, stop) = (acks.clone(), indeterminate.clone(), stop.clone());
            thread::spawn(move || {
                let mut target = first_leader;
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let key = format!("c{c}-{n}");
                    let value = format!("value of {key} from client {c}").into_bytes();
                    n += 1;
                    match client.put(target, &key, &value, Duration::from_secs(5)) {
                        PutOutcome::Acked { index, term, by } => {
                            target = by;
                            acks.lock().unwrap().push(Ack {
                                key,
                                value,
                                index,
                                term,
                            });
                        }
                        PutOutcome::Indeterminate(why) | PutOutcome::NotSent(why) => {
                            indeterminate.lock().unwrap().push((key, why));
                            target = target % 3 + 1;
                        }
                    }
                }
            })
        })
        .collect();

    let count_acks =
        |pred: &dyn Fn(&Ack) -> bool| acks.lock().unwrap().iter().filter(|a| pred(a)).count();

    // Let the clients get going, then kill -9 the leader in the middle of the traffic.
    cluster.wait_for(
        Duration::from_secs(15),
        &format!("{ACKS_BEFORE_KILL} acknowledged writes before the kill"),
        || {
            (count_acks(&|_| true) >= ACKS_BEFORE_KILL && started.elapsed() >= MIN_RUN / 2)
                .then_some(())
        },
    );
    let (leader, term) = cluster.wait_leader(LEADER_TIMEOUT);
    cluster.kill9(leader);
    let killed_at = Instant::now();
    eprintln!(
        "killed leader {leader} (term {term}; first leader {first_leader} in term {first_term}) \
         after {:?} and {} acks",
        started.elapsed(),
        count_acks(&|_| true)
    );

    // Acks in a term above the killed leader's were committed by a new leader, after the kill.
    // Keep writing until the survivors elected a new leader and acknowledged enough writes.
    cluster.wait_for(
        MAX_RUN,
        &format!("{ACKS_AFTER_KILL} acknowledged writes after the kill"),
        || {
            let after = count_acks(&|a| a.term > term);
            (after >= ACKS_AFTER_KILL && started.elapsed() >= MIN_RUN).then_some(())
        },
    );
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().expect("client thread panicked");
    }
    let acks = acks.lock().unwrap().clone();
    let before = acks.iter().filter(|a| a.term <= term).count();
    let after = acks.iter().filter(|a| a.term > term).count();
    eprintln!(
        "{} acks ({before} in terms <= {term}, {after} after the kill; writing stopped {:?} \
         after the kill), {} indeterminate",
        acks.len(),
        killed_at.elapsed(),
        indeterminate.lock().unwrap().len()
    );
    assert!(before > 0, "no write was acknowledged before the kill");
    assert!(after > 0, "no write was acknowledged after the kill");

    // Indexes are unique: two acknowledged writes never share a log index.
    let mut by_index = BTreeMap::new();
    for a in &acks {
        if let Some(other) = by_index.insert(a.index, a.key.clone()) {
            cluster.fail(&format!(
                "writes {other} and {} were both acknowledged at index {}",
                a.key, a.index
            ));
        }
    }

    cluster.restart(leader);
    let max_index = acks.iter().map(|a| a.index).max().expect("some acks");
    let applied = cluster.wait_converged(max_index, CATCH_UP_TIMEOUT);
    eprintln!("all 3 nodes applied {applied} (max acknowledged index {max_index})");
    // Writes whose outcome is unknown may or may not exist, but every node must agree.
    for (key, why) in indeterminate.lock().unwrap().iter() {
        let values: Vec<_> = cluster
            .ids()
            .iter()
            .map(|&id| cluster.get(id, key))
            .collect();
        if values.windows(2).any(|w| w[0] != w[1]) {
            cluster.fail(&format!(
                "nodes disagree on indeterminate write {key} ({why}): {values:?}"
            ));
        }
    }
    for id in cluster.ids() {
        for a in &acks {
            match cluster.get(id, &a.key) {
                Some(v) if v == a.value => {}
                got => cluster.fail(&format!(
                    "node {id}: acknowledged write {} (index {}, term {}) reads back as {:?}",
                    a.key,
                    a.index,
                    a.term,
                    got.map(|v| String::from_utf8_lossy(&v).into_owned())
                )),
            }
        }
    }
}

#[test]
fn restarted_node_rejoins_and_catches_up() {
    let mut cluster = ProcCluster::start(3, tempdir());
    let (leader, _) = cluster.wait_leader(LEADER_TIMEOUT);
    for i in 0..10 {
        cluster.put_ok(&format!("before-{i}"), format!("b{i}").as_bytes());
    }
    let follower = cluster.follower_of(leader);
    cluster.stop(follower);

    // Two of three nodes still form a majority and commit.
    let mut last = 0;
    for i in 0..10 {
        let (index, _) = cluster.put_ok(&format!("during-{i}"), format!("d{i}").as_bytes());
        last = last.max(index);
    }
    let down = cluster.status_wait(leader);
    assert!(down["commit"].as_u64().unwrap() >= last);

    cluster.restart(follower);
    cluster.wait_for(
        CATCH_UP_TIMEOUT,
        &format!("node {follower} to apply up to the leader's commit index"),
        || {
            let (l, f) = (cluster.status(leader)?, cluster.status(follower)?);
            let commit = l["commit"].as_u64()?;
            (commit >= last && f["applied"].as_u64()? == commit).then_some(())
        },
    );
    for i in 0..10 {
        for (prefix, val) in [("during", "d"), ("before", "b")] {
            let got = cluster.get(follower, &format!("{prefix}-{i}"));
            assert_eq!(
                got.as_deref(),
                Some(format!("{val}{i}").as_bytes()),
                "{prefix}-{i} on the restarted node {follower}"
            );
        }
    }
}

#[test]
fn whole_cluster_restart_keeps_data() {
    let mut cluster = ProcCluster::start(3, tempdir());
    cluster.wait_leader(LEADER_TIMEOUT);
    let mut last = 0;
    for i in 0..10 {
        let (index, _) = cluster.put_ok(&format!("k{i}"), format!("v{i}").as_bytes());
        last = last.max(index);
    }
    let old_term = cluster
        .ids()
        .into_iter()
        .map(|id| cluster.status_wait(id)["term"].as_u64().unwrap())
        .max()
        .unwrap();
    for id in cluster.ids() {
        cluster.stop(id);
    }
    for id in cluster.ids() {
        cluster.restart(id);
    }
    let (_, new_term) = cluster.wait_leader(LEADER_TIMEOUT);
    assert!(
        new_term > old_term,
        "term after the restart {new_term} is not above {old_term}"
    );
    cluster.wait_converged(last, CATCH_UP_TIMEOUT);
    for id in cluster.ids() {
        for i in 0..10 {
            assert_eq!(
                cluster.get(id, &format!("k{i}")).as_deref(),
                Some(format!("v{i}").as_bytes()),
                "k{i} on node {id} after the restart"
            );
        }
    }
    // And the restarted cluster still takes writes.
    cluster.put_ok("after-restart", b"yes");
}

/// A follower that missed 200 small writes gets them back in one AppendEntries frame. Regression
/// test for 9f7b0e8: the peer listener's bincode decode limit was sized from the wire length while
/// bincode charges in-memory sizes, so such a frame was refused (`LimitExceeded`), the connection
/// closed, the same frame resent: the follower never caught up.
#[test]
fn follower_catches_up_200_small_entries_in_one_batch() {
    lagging_follower_scenario(&[]);
}

/// The same with at most 16 entries per message: the follower catches up over many batches.
#[test]
fn follower_catches_up_200_small_entries_in_many_batches() {
    lagging_follower_scenario(&["--max-entries-per-msg", "16"]);
}

fn lagging_follower_scenario(flags: &[&str]) {
    let mut cluster = ProcCluster::start_with(3, tempdir(), flags);
    let (leader, _) = cluster.wait_leader(LEADER_TIMEOUT);
    let follower = cluster.follower_of(leader);
    cluster.stop(follower);
    let mut last = 0;
    for i in 0..200 {
        last = cluster.put_ok(&format!("l{i}"), b"x").0;
    }
    cluster.restart(follower);
    cluster.wait_for(
        CATCH_UP_TIMEOUT / 3,
        &format!("node {follower} to apply the 200 entries it missed (up to {last})"),
        || (cluster.status(follower)?["applied"].as_u64()? >= last).then_some(()),
    );
    assert_eq!(cluster.get(follower, "l199").as_deref(), Some(&b"x"[..]));
}

/// A write sent to a follower just after the leader died is not refused at once (the follower
/// still names the dead leader, and the forward cannot connect): the follower waits, bounded by
/// two election timeouts, for the next leader and hands the write to it (or takes it itself).
#[test]
fn a_write_through_a_follower_waits_for_the_next_leader_when_the_leader_dies() {
    let mut c = ProcCluster::start(3, tempdir());
    let (leader, _) = c.wait_leader(LEADER_TIMEOUT);
    let follower = c.follower_of(leader);
    c.put_ok("before", b"1");
    c.wait_for(
        LEADER_TIMEOUT,
        "the follower to know the leader's address",
        || {
            let status = c.status(follower)?;
            (status["leader"].as_u64() == Some(leader) && status["leader_addr"].is_string())
                .then_some(())
        },
    );
    c.kill9(leader);
    let started = Instant::now();
    let answer = process::http_client()
        .put(format!("{}/v1/kv/after", c.client().base(follower)))
        .body("2")
        .send()
        .expect("the follower answers");
    let (status, elapsed) = (answer.status().as_u16(), started.elapsed());
    let body = answer.text().unwrap_or_default();
    let (new_leader, _) = c.wait_leader(LEADER_TIMEOUT);
    assert_ne!(new_leader, leader);
    if status == 200 {
        assert_eq!(c.get(new_leader, "after").as_deref(), Some(&b"2"[..]));
    } else {
        // An election slower than the wait (two 300 ms election timeouts) on a loaded machine:
        // the answer must still have come only after waiting, and say the write was not sent.
        assert_eq!(status, 503, "after {elapsed:?}: {body}");
        assert!(
            elapsed >= Duration::from_millis(500) && body.contains("leader"),
            "a refusal must come after waiting for a new leader, not at once: after \
             {elapsed:?}: {body}"
        );
        assert_eq!(
            c.get(new_leader, "after"),
            None,
            "a refused write was not applied"
        );
    }
}
