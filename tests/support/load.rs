//! Client load for cluster tests: writer tasks that follow whoever leads (through the cluster's
//! shared handles, so nodes may be added, stopped and restarted meanwhile) and record which
//! writes were acknowledged; and the checks that every acknowledged write survived.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use raftix::actors::RaftHandle;
use raftix::core::{NodeId, Role};
use raftix::messages::node::ClientError;
use raftix::storage::{KvCommand, KvReader};

use super::cluster::{Handles, TestCluster};

/// What the writers did.
#[derive(Default, Clone, Debug)]
pub struct WriteLog {
    /// Acknowledged writes: key -> value.
    pub acked: BTreeMap<String, Bytes>,
    /// Every key a write was submitted for (acknowledged or not).
    pub attempted: BTreeSet<String>,
    /// Failed writes by error kind, for diagnostics.
    pub failures: BTreeMap<String, u64>,
}

/// Running writers.
pub struct Load {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<WriteLog>>,
    tasks: Vec<actix_rt::task::JoinHandle<()>>,
}

/// The value written for `key`: `len` bytes derived from the key, so a read can be checked.
pub fn value_for(key: &str, len: usize) -> Bytes {
    let pattern = format!("{key};");
    Bytes::from(
        pattern
            .as_bytes()
            .iter()
            .copied()
            .cycle()
            .take(len.max(1))
            .collect::<Vec<u8>>(),
    )
}

/// The current leader's handle among `handles` (the hint first), if any node says it leads.
pub async fn find_leader(handles: &Handles, hint: Option<NodeId>) -> Option<RaftHandle> {
    let all: Vec<RaftHandle> = handles.lock().expect("handles").values().cloned().collect();
    if let Some(hint) = hint {
        if let Some(h) = all.iter().find(|h| h.id() == hint) {
            return Some(h.clone());
        }
    }
    let mut best: Option<(u64, RaftHandle)> = None;
    for h in all {
        if let Ok(s) = h.status().await {
            if s.role == Role::Leader && best.as_ref().is_none_or(|(t, _)| s.term > *t) {
                best = Some((s.term, h));
            }
        }
    }
    best.map(|(_, h)| h)
}

impl Load {
    /// Starts `writers` tasks, each writing keys `{prefix}{writer}-{n}` with values of
    /// `value_len` bytes, one write at a time, until stopped or `per_writer` writes were made.
    pub fn start(
        handles: Handles,
        writers: usize,
        prefix: &str,
        value_len: usize,
        per_writer: Option<u64>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(WriteLog::default()));
        let tasks = (0..writers)
            .map(|w| {
                let (handles, stop, log) = (handles.clone(), stop.clone(), log.clone());
                let prefix = format!("{prefix}{w}-");
                actix_rt::spawn(async move {
                    let mut hint = None;
                    let mut n = 0u64;
                    while !stop.load(Ordering::SeqCst) && per_writer.is_none_or(|max| n < max) {
                        let Some(leader) = find_leader(&handles, hint).await else {
                            // No leader right now: look again shortly.
                            actix_rt::time::sleep(Duration::from_millis(5)).await;
                            continue;
                        };
                        let key = format!("{prefix}{n:06}");
                        n += 1;
                        let value = value_for(&key, value_len);
                        let cmd = KvCommand::Put {
                            key: key.clone(),
                            value: value.clone(),
                        };
                        log.lock().expect("log").attempted.insert(key.clone());
                        match leader.submit(cmd.encode()).await {
                            Ok(_) => {
                                hint = Some(leader.id());
                                log.lock().expect("log").acked.insert(key, value);
                            }
                            Err(err) => {
                                hint = match err {
                                    ClientError::NotLeader { leader_id, .. } => leader_id,
                                    _ => None,
                                };
                                let kind = format!("{err:?}")
                                    .split(['(', ' ', '{'])
                                    .next()
                                    .unwrap_or_default()
                                    .to_string();
                                *log.lock().expect("log").failures.entry(kind).or_default() += 1;
                            }
                        }
                    }
                })
            })
            .collect();
        Self { stop, log, tasks }
    }

    /// Acknowledged writes so far.
    pub fn acked(&self) -> usize {
        self.log.lock().expect("log").acked.len()
    }

    /// Waits until at least `n` writes were acknowledged in all, or panics after `timeout`.
    pub async fn wait_acked(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.acked() < n {
            if Instant::now() > deadline {
                let log = self.log.lock().expect("log");
                panic!(
                    "writes stalled at {} acknowledged (waiting for {n}); failures: {:?}",
                    log.acked.len(),
                    log.failures
                );
            }
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the writers (after their write in progress) and returns what they did.
    pub async fn stop(self) -> WriteLog {
        self.stop.store(true, Ordering::SeqCst);
        self.join().await
    }

    /// Waits for the writers to finish their quota and returns what they did.
    pub async fn join(self) -> WriteLog {
        for t in self.tasks {
            t.await.expect("writer task");
        }
        let log = self.log.lock().expect("log").clone();
        log
    }
}

/// Writes `count` keys `{prefix}{n}` with values of `value_len` bytes through `leader`, in
/// concurrent waves of `wave`, all of which must be acknowledged.
pub async fn write_all(
    leader: &RaftHandle,
    prefix: &str,
    count: u64,
    value_len: usize,
    wave: u64,
) -> BTreeMap<String, Bytes> {
    let mut acked = BTreeMap::new();
    let mut n = 0;
    while n < count {
        let mut writes = Vec::new();
        for i in n..(n + wave).min(count) {
            let key = format!("{prefix}{i:06}");
            let value = value_for(&key, value_len);
            let cmd = KvCommand::Put {
                key: key.clone(),
                value: value.clone(),
            };
            let leader = leader.clone();
            writes.push(async move { (key, value, leader.submit(cmd.encode()).await) });
        }
        n = (n + wave).min(count);
        for (key, value, result) in futures::future::join_all(writes).await {
            result.unwrap_or_else(|e| panic!("write of {key} failed: {e:?}"));
            acked.insert(key, value);
        }
    }
    acked
}

/// Every pair of the state machine whose key starts with `prefix`.
pub fn dump(kv: &KvReader, prefix: &str) -> BTreeMap<String, Bytes> {
    let mut out = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = kv.scan(prefix, after.as_deref(), 1000).expect("scan");
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        out.extend(page);
    }
    out
}

/// Checks node `id`'s state machine: every acknowledged write is there with its value, and
/// every key under `prefix` was written by some attempt (no phantom writes).
pub fn check_writes(c: &TestCluster, id: NodeId, prefix: &str, log: &WriteLog) {
    let state = dump(&c.nodes[&id].kv, prefix);
    let mut lost = Vec::new();
    for (key, value) in &log.acked {
        match state.get(key) {
            Some(v) if v == value => {}
            Some(_) => panic!("node {id}: {key} holds another value"),
            None => lost.push(key.clone()),
        }
    }
    assert!(
        lost.is_empty(),
        "node {id} lost {} acknowledged writes (of {}), e.g. {:?}",
        lost.len(),
        log.acked.len(),
        &lost[..lost.len().min(5)]
    );
    for key in state.keys() {
        assert!(
            log.attempted.contains(key),
            "node {id}: {key} was never written"
        );
    }
}

/// Waits until the nodes `ids` agree on one leader among them and each applied everything
/// its log holds up to the leader's commit, with the same last log entry; returns the leader.
pub async fn wait_converged(c: &TestCluster, ids: &BTreeSet<NodeId>, timeout: Duration) -> NodeId {
    let s = c
        .wait_until("convergence", timeout, |s| {
            let Some(leader) = super::cluster::agreed_leader(s, ids) else {
                return false;
            };
            let l = &s[&leader];
            ids.iter().all(|id| {
                s.get(id).is_some_and(|x| {
                    x.applied == l.commit
                        && x.commit == l.commit
                        && x.last_log_index == l.last_log_index
                        && x.last_log_term == l.last_log_term
                })
            })
        })
        .await;
    super::cluster::agreed_leader(&s, ids).expect("leader")
}

/// Checks that the nodes `ids` hold exactly the same pairs under `prefix`.
pub fn check_same_state(c: &TestCluster, ids: &BTreeSet<NodeId>, prefix: &str) {
    let mut states = ids.iter().map(|id| (*id, dump(&c.nodes[id].kv, prefix)));
    let Some((first_id, first)) = states.next() else {
        return;
    };
    for (id, state) in states {
        if state != first {
            let only_first: Vec<_> = first
                .keys()
                .filter(|k| !state.contains_key(*k))
                .take(5)
                .collect();
            let only_this: Vec<_> = state
                .keys()
                .filter(|k| !first.contains_key(*k))
                .take(5)
                .collect();
            panic!(
                "nodes {first_id} and {id} differ: {} vs {} keys; only on {first_id}: {only_first:?}; only on {id}: {only_this:?}",
                first.len(),
                state.len()
            );
        }
    }
}

/// Number of entries node `id` holds in memory and its first index (`GetLog`).
pub async fn log_bounds(handle: &RaftHandle) -> (u64, u64) {
    let slice = handle
        .addr()
        .send(raftix::messages::node::GetLog { from: 0, limit: 1 })
        .await
        .expect("GetLog");
    (slice.first_index, slice.last_index)
}

/// A counter of node `handle`.
pub fn counter(
    handle: &RaftHandle,
    which: fn(&raftix::metrics::NodeMetrics) -> &prometheus::IntCounter,
) -> u64 {
    raftix::metrics::NodeMetrics::get(which(handle.metrics()))
}
