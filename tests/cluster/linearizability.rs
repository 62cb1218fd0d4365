//! Linearizability of the replicated key-value store, checked by a real checker
//! (`raftix_testkit::checker`, Wing–Gong search): concurrent clients write, compare-and-set and read
//! (`linearizable` on leaders and followers, `lease` on the leader) through random nodes while a
//! nemesis isolates the leader or a random node and heals, on a seeded schedule. Every key's
//! history must be linearizable. A failure prints the seed: rerun one with
//! `RAFTIX_LIN_SEED=N cargo test --test linearizability`.

use crate::support::cluster;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::TestCluster;
use raftix::messages::node::{ClientError, ReadMode};
use raftix::storage::{KvCommand, KvOutput};
use raftix_testkit::checker::{check_history, KeyedOperation, KvInput, Operation};

const KEYS: [&str; 3] = ["x", "y", "z"];

use crate::support::rng;
use rng::Rng;

struct History {
    start: Instant,
    ops: Mutex<Vec<KeyedOperation>>,
}

impl History {
    fn now(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
    fn push(&self, key: &str, op: Operation) {
        if let Ok(mut ops) = self.ops.lock() {
            ops.push(op.on(key));
        }
    }
}

/// Sends `command` through `node`, following a named leader once; `None` when the command was
/// certainly not applied.
async fn submit(c: &TestCluster, node: u64, command: Bytes) -> Option<Result<Bytes, ()>> {
    let mut target = node;
    for _ in 0..2 {
        match c.nodes[&target].handle.submit(command.clone()).await {
            Ok(done) => return Some(Ok(done.output)),
            Err(ClientError::NotLeader {
                leader_id: Some(l), ..
            }) if c.nodes.contains_key(&l) => target = l,
            Err(ClientError::NotLeader { .. }) | Err(ClientError::ProposalDropped) => return None,
            Err(_) => return Some(Err(())), // outcome unknown
        }
    }
    None
}

async fn client(c: Arc<TestCluster>, history: Arc<History>, id: u64, mut rng: Rng, until: Instant) {
    let ids: Vec<u64> = c.ids().into_iter().collect();
    let mut n = 0;
    while Instant::now() < until {
        n += 1;
        let key = KEYS[rng.below(KEYS.len() as u64) as usize];
        let node = ids[rng.below(ids.len() as u64) as usize];
        let value = format!("c{id}-{n}").into_bytes();
        let call = history.now();
        match rng.below(10) {
            0..=3 => {
                let command = KvCommand::Put {
                    key: key.into(),
                    value: Bytes::from(value.clone()),
                }
                .encode();
                match submit(&c, node, command).await {
                    Some(Ok(_)) => {
                        history.push(key, Operation::write(id, call, history.now(), &value))
                    }
                    Some(Err(())) => history.push(
                        key,
                        Operation::indeterminate(id, call, KvInput::Write(value)),
                    ),
                    None => {}
                }
            }
            4..=5 => {
                let expected = c.nodes[&node]
                    .kv
                    .get(key)
                    .ok()
                    .flatten()
                    .map(|b| b.to_vec());
                let command = KvCommand::Cas {
                    key: key.into(),
                    expected: expected.clone().map(Bytes::from),
                    value: Some(Bytes::from(value.clone())),
                }
                .encode();
                match submit(&c, node, command).await {
                    Some(Ok(output)) => {
                        if let Ok(KvOutput::Cas { swapped, .. }) = KvOutput::decode(&output) {
                            let op = Operation::cas(
                                id,
                                call,
                                history.now(),
                                expected.as_deref(),
                                Some(&value),
                                swapped,
                            );
                            history.push(key, op);
                        }
                    }
                    Some(Err(())) => {
                        let input = KvInput::Cas {
                            expected,
                            new: Some(value),
                        };
                        history.push(key, Operation::indeterminate(id, call, input));
                    }
                    None => {}
                }
            }
            roll => {
                let mode = if roll == 9 {
                    ReadMode::Lease
                } else {
                    ReadMode::Linearizable
                };
                let node_handle = &c.nodes[&node];
                if node_handle.handle.read_barrier_with(mode).await.is_ok() {
                    if let Ok(read) = node_handle.kv.get(key) {
                        history.push(
                            key,
                            Operation::read(id, call, history.now(), read.as_deref()),
                        );
                    }
                }
            }
        }
    }
}

async fn nemesis(c: Arc<TestCluster>, mut rng: Rng, until: Instant) -> usize {
    let ids: Vec<u64> = c.ids().into_iter().collect();
    let mut faults = 0;
    while Instant::now() < until {
        actix_rt::time::sleep(Duration::from_millis(250 + rng.below(250))).await;
        let statuses = c.statuses().await;
        let leader = statuses
            .values()
            .find(|s| s.role == raftix::core::Role::Leader)
            .map(|s| s.id);
        match rng.below(3) {
            0 if leader.is_some() => {
                c.partition(&BTreeSet::from([leader.unwrap_or(1)])).await;
                faults += 1;
            }
            1 => {
                c.partition(&BTreeSet::from([ids[rng.below(ids.len() as u64) as usize]]))
                    .await;
                faults += 1;
            }
            _ => c.heal().await,
        }
    }
    c.heal().await;
    faults
}

async fn run(seed: u64) {
    let c = Arc::new(TestCluster::start_with(3, |cfg| cfg.proposal_timeout_ms = 1000).await);
    c.wait_leader(&c.ids(), Duration::from_secs(5)).await;
    let history = Arc::new(History {
        start: Instant::now(),
        ops: Mutex::new(Vec::new()),
    });
    let until = Instant::now() + Duration::from_secs(4);
    let mut rng = Rng(seed);
    let mut tasks = Vec::new();
    for id in 1..=6 {
        let rng = Rng(rng.next_u64());
        tasks.push(actix_rt::spawn(client(
            c.clone(),
            history.clone(),
            id,
            rng,
            until,
        )));
    }
    let faults = nemesis(c.clone(), Rng(rng.next_u64()), until).await;
    for t in tasks {
        t.await.expect("client task");
    }
    let ops = history.ops.lock().map(|o| o.clone()).unwrap_or_default();
    let writes = ops
        .iter()
        .filter(|o| matches!(o.op.input, KvInput::Write(_)))
        .count();
    let reads = ops
        .iter()
        .filter(|o| matches!(o.op.input, KvInput::Read))
        .count();
    assert!(
        writes > 20 && reads > 20,
        "seed {seed}: too little traffic ({writes} writes, {reads} reads)"
    );
    assert!(faults > 0, "seed {seed}: the nemesis injected no fault");
    if let Err(err) = check_history(&ops) {
        panic!("seed {seed}: history of {} operations is not linearizable:\n{err}\nrerun with RAFTIX_LIN_SEED={seed}", ops.len());
    }
    eprintln!("seed {seed}: {} operations ({writes} writes, {reads} reads), {faults} faults: linearizable", ops.len());
    for node in c.nodes.values() {
        node.handle.shutdown().await;
    }
}

fn seeds() -> Vec<u64> {
    match std::env::var("RAFTIX_LIN_SEED") {
        Ok(one) => vec![one.parse().expect("RAFTIX_LIN_SEED is a number")],
        Err(_) => vec![1, 2, 3],
    }
}

#[actix_rt::test]
async fn histories_under_partitions_are_linearizable() {
    for seed in seeds() {
        run(seed).await;
    }
}
