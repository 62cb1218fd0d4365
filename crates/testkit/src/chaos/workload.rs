//! Concurrent clients: reads, writes, compare-and-set and deletes on a few keys, each through a
//! randomly chosen node, every operation recorded with its invoke and completion times.
//!
//! - Keys rotate: at any time clients use `g<N>.k0..k<K-1>`, where `N` counts periods of
//!   [`WorkloadConfig::generation`]. Linearizability is checked per key, so rotation keeps each
//!   key's history small enough for the checker however long the run (Jepsen's "independent
//!   keys").
//! - Most writes carry an `Idempotency-Key`; an attempt whose outcome is unknown (timeout, 504,
//!   lost connection) is retried with the same key, on another node, until the operation's
//!   deadline: the server applies it at most once, so the operation spans its first call to its
//!   last answer. An operation still unknown at its deadline is recorded as indeterminate (no
//!   return time); one that certainly failed (refused, 307, 503 `no_leader`...) is left out.
//! - The other writes ([`WorkloadConfig::single_shot_percent`]) carry no key and stop at the
//!   first unknown outcome, recorded as indeterminate (attempts certainly not applied are still
//!   retried).
//! - Reads are retried the same way (a read without an answer has no effect).
//! - Some writes go to write-once keys `ack.c<client>.<n>`: every acknowledged one must be on
//!   every node after the final heal (the lost-write check). They are not in the checked
//!   history (a single write per key proves nothing there).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::checker::{KeyedOperation, KvInput, Operation};

use super::api::{self, Api, ReadAnswer, WriteAnswer};
use super::net::NodeId;
use super::rng::Rng;
use super::timeline::Clock;

/// How the clients behave.
#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    /// Concurrent clients (one thread each).
    pub clients: usize,
    /// Register keys in use at any time.
    pub keys: usize,
    /// How long a generation of keys is used.
    pub generation: Duration,
    /// How long one operation may take, retries included, before it is recorded as
    /// indeterminate.
    pub op_deadline: Duration,
    /// Timeout of one HTTP attempt.
    pub attempt_timeout: Duration,
    /// Most pause between two operations of a client (ms).
    pub think_ms: u64,
    /// Share of writes (percent) sent without an idempotency key and never retried after an
    /// unknown outcome (recorded as indeterminate at once).
    pub single_shot_percent: u64,
    /// `consistency` of reads: `linearizable` normally; `stale` only to show that the checker
    /// catches stale reads (a deliberately broken configuration).
    pub read_consistency: String,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            clients: 6,
            keys: 3,
            generation: Duration::from_secs(10),
            op_deadline: Duration::from_secs(5),
            attempt_timeout: Duration::from_millis(2500),
            think_ms: 20,
            single_shot_percent: 25,
            read_consistency: "linearizable".into(),
        }
    }
}

/// Counters of what the clients saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadStats {
    /// Reads that returned a value (or absence).
    pub reads: u64,
    /// Acknowledged writes (register keys).
    pub writes: u64,
    /// Acknowledged compare-and-sets, swapped.
    pub cas_swapped: u64,
    /// Acknowledged compare-and-sets, not swapped.
    pub cas_failed: u64,
    /// Acknowledged deletes.
    pub deletes: u64,
    /// Acknowledged writes of write-once keys.
    pub unique_writes: u64,
    /// Operations recorded as indeterminate.
    pub indeterminate: u64,
    /// Operations that certainly did not happen (not recorded).
    pub not_applied: u64,
    /// Reads without an answer (not recorded).
    pub failed_reads: u64,
    /// Attempts retried after an unknown outcome or a refusal.
    pub retries: u64,
    /// A few distinct unexpected answers (500, 400, ...), for the report.
    pub unexpected: Vec<String>,
}

/// What the run recorded.
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    /// Every recorded operation on register keys.
    pub history: Vec<KeyedOperation>,
    /// Acknowledged write-once keys and their values.
    pub acked_unique: Vec<(String, String)>,
    /// Counters.
    pub stats: WorkloadStats,
}

/// Shared by the client threads.
#[derive(Debug)]
pub struct Recorder {
    clock: Clock,
    data: Mutex<Recorded>,
}

impl Recorder {
    /// An empty record on `clock`.
    pub fn new(clock: Clock) -> Recorder {
        Recorder {
            clock,
            data: Mutex::new(Recorded::default()),
        }
    }

    fn with(&self, f: impl FnOnce(&mut Recorded)) {
        if let Ok(mut d) = self.data.lock() {
            f(&mut d);
        }
    }

    /// Records an operation on a register key.
    pub fn push(&self, key: &str, op: Operation) {
        self.with(|d| {
            if op.is_indeterminate() {
                d.stats.indeterminate += 1;
            }
            d.history.push(op.on(key));
        });
    }

    fn note_unexpected(&self, what: &str) {
        if what.contains(" 500 ") || what.contains(" 400 ") || what.contains(" 404 ") {
            self.with(|d| {
                if d.stats.unexpected.len() < 8 && !d.stats.unexpected.iter().any(|u| u == what) {
                    d.stats.unexpected.push(what.to_string());
                }
            });
        }
    }

    /// A copy of everything recorded so far.
    pub fn snapshot(&self) -> Recorded {
        self.data.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

/// The running clients.
pub struct Workload {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
    recorder: Arc<Recorder>,
}

/// The register keys of the generation current at `now_us`.
pub fn keys_at(config: &WorkloadConfig, now_us: u64) -> Vec<String> {
    let generation = now_us / config.generation.as_micros().max(1) as u64;
    (0..config.keys)
        .map(|k| format!("g{generation}.k{k}"))
        .collect()
}

impl Workload {
    /// Starts `config.clients` client threads against the nodes of `api`, each with its own
    /// generator derived from `rng`.
    pub fn start(api: &Api, config: &WorkloadConfig, rng: &mut Rng, clock: Clock) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let recorder = Arc::new(Recorder::new(clock));
        let threads = (1..=config.clients as u64)
            .map(|id| {
                let mut client = Client {
                    id,
                    api: api.clone(),
                    http: api::client(config.attempt_timeout),
                    config: config.clone(),
                    rng: rng.fork(),
                    recorder: recorder.clone(),
                    known: HashMap::new(),
                    ids: api.ids(),
                };
                let stop = stop.clone();
                thread::Builder::new()
                    .name(format!("chaos-client-{id}"))
                    .spawn(move || client.run(&stop))
                    .expect("spawn client thread")
            })
            .collect();
        Workload {
            stop,
            threads,
            recorder,
        }
    }

    /// The shared record (for final reads made by the harness).
    pub fn recorder(&self) -> Arc<Recorder> {
        self.recorder.clone()
    }

    /// Tells the clients to stop after their current operation and waits for them.
    pub fn stop(self) -> Arc<Recorder> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
        self.recorder
    }
}

/// One client's state.
struct Client {
    id: u64,
    api: Api,
    http: reqwest::blocking::Client,
    config: WorkloadConfig,
    rng: Rng,
    recorder: Arc<Recorder>,
    /// The last value this client saw per key (what its next CAS expects).
    known: HashMap<String, Option<String>>,
    ids: Vec<NodeId>,
}

/// The end of one operation.
enum Ended<T> {
    Done(T, u64),
    Unknown,
    NotApplied,
}

impl Client {
    fn now(&self) -> u64 {
        self.recorder.clock.now_us()
    }

    fn node(&mut self) -> NodeId {
        *self.rng.pick(&self.ids).unwrap_or(&1)
    }

    fn run(&mut self, stop: &AtomicBool) {
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let keys = keys_at(&self.config, self.now());
            let key = self.rng.pick(&keys).cloned().unwrap_or_default();
            let value = format!("c{}.{n}", self.id);
            let idem = if self.rng.chance(self.config.single_shot_percent) {
                None
            } else {
                Some(format!(
                    "chaos-c{}-{n}-{}",
                    self.id,
                    self.rng.next_u64() % 1_000_000
                ))
            };
            let idem = idem.as_deref();
            match self.rng.below(100) {
                0..=34 => self.read(&key),
                35..=64 => self.write(&key, &value, idem),
                65..=84 => self.cas(&key, &value, idem),
                85..=89 => self.delete(&key, idem),
                _ => self.unique_write(&format!("ack.c{}.{n}", self.id), &value, idem),
            }
            let think = self.rng.below(self.config.think_ms + 1);
            thread::sleep(Duration::from_millis(think));
        }
    }

    /// Sends a write until it is acknowledged, certainly refused at the deadline, or still
    /// unknown at the deadline; without an idempotency key (`retry_unknown` false), stops at the
    /// first unknown outcome.
    fn write_op(
        &mut self,
        retry_unknown: bool,
        mut send: impl FnMut(&Client, NodeId) -> WriteAnswer,
    ) -> Ended<serde_json::Value> {
        let deadline = Instant::now() + self.config.op_deadline;
        let mut maybe_applied = false;
        loop {
            let node = self.node();
            match send(self, node) {
                WriteAnswer::Done(body) => return Ended::Done(body, self.now()),
                WriteAnswer::NotApplied(_) => {}
                WriteAnswer::Unknown(why) => {
                    self.recorder.note_unexpected(&why);
                    maybe_applied = true;
                    if !retry_unknown {
                        return Ended::Unknown;
                    }
                }
            }
            if Instant::now() >= deadline {
                return if maybe_applied {
                    Ended::Unknown
                } else {
                    self.recorder.with(|d| d.stats.not_applied += 1);
                    Ended::NotApplied
                };
            }
            self.recorder.with(|d| d.stats.retries += 1);
            thread::sleep(Duration::from_millis(50 + self.rng.below(100)));
        }
    }

    fn read(&mut self, key: &str) {
        let call = self.now();
        let deadline = Instant::now() + self.config.op_deadline;
        loop {
            let node = self.node();
            match self
                .api
                .get(&self.http, node, key, &self.config.read_consistency)
            {
                ReadAnswer::Value(value) => {
                    let op = Operation::read(self.id, call, self.now(), value.as_deref());
                    self.recorder.push(key, op);
                    self.recorder.with(|d| d.stats.reads += 1);
                    let text = value.map(|v| String::from_utf8_lossy(&v).into_owned());
                    self.known.insert(key.to_string(), text);
                    return;
                }
                ReadAnswer::Failed(why) => self.recorder.note_unexpected(&why),
            }
            if Instant::now() >= deadline {
                self.recorder.with(|d| d.stats.failed_reads += 1);
                return;
            }
            self.recorder.with(|d| d.stats.retries += 1);
            thread::sleep(Duration::from_millis(50 + self.rng.below(100)));
        }
    }

    fn write(&mut self, key: &str, value: &str, idem: Option<&str>) {
        let call = self.now();
        let ended = self.write_op(idem.is_some(), |c, node| {
            c.api.put(&c.http, node, key, value.as_bytes(), idem)
        });
        match ended {
            Ended::Done(_, ret) => {
                self.recorder
                    .push(key, Operation::write(self.id, call, ret, value.as_bytes()));
                self.recorder.with(|d| d.stats.writes += 1);
                self.known.insert(key.to_string(), Some(value.to_string()));
            }
            Ended::Unknown => {
                let input = KvInput::Write(value.as_bytes().to_vec());
                self.recorder
                    .push(key, Operation::indeterminate(self.id, call, input));
                self.known.remove(key);
            }
            Ended::NotApplied => {}
        }
    }

    fn cas(&mut self, key: &str, value: &str, idem: Option<&str>) {
        let expected = self.known.get(key).cloned().flatten();
        let call = self.now();
        let ended = self.write_op(idem.is_some(), |c, node| {
            c.api
                .cas(&c.http, node, key, expected.as_deref(), Some(value), idem)
        });
        match ended {
            Ended::Done(body, ret) => {
                let swapped = body["swapped"].as_bool().unwrap_or(false);
                let op = Operation::cas(
                    self.id,
                    call,
                    ret,
                    expected.as_deref().map(str::as_bytes),
                    Some(value.as_bytes()),
                    swapped,
                );
                self.recorder.push(key, op);
                self.recorder.with(|d| {
                    if swapped {
                        d.stats.cas_swapped += 1;
                    } else {
                        d.stats.cas_failed += 1;
                    }
                });
                let current = body["current"].as_str().map(str::to_string);
                self.known.insert(key.to_string(), current);
            }
            Ended::Unknown => {
                let input = KvInput::Cas {
                    expected: expected.map(String::into_bytes),
                    new: Some(value.as_bytes().to_vec()),
                };
                self.recorder
                    .push(key, Operation::indeterminate(self.id, call, input));
                self.known.remove(key);
            }
            Ended::NotApplied => {}
        }
    }

    fn delete(&mut self, key: &str, idem: Option<&str>) {
        let call = self.now();
        match self.write_op(idem.is_some(), |c, node| {
            c.api.delete(&c.http, node, key, idem)
        }) {
            Ended::Done(_, ret) => {
                self.recorder
                    .push(key, Operation::delete(self.id, call, ret));
                self.recorder.with(|d| d.stats.deletes += 1);
                self.known.insert(key.to_string(), None);
            }
            Ended::Unknown => {
                self.recorder.push(
                    key,
                    Operation::indeterminate(self.id, call, KvInput::Delete),
                );
                self.known.remove(key);
            }
            Ended::NotApplied => {}
        }
    }

    fn unique_write(&mut self, key: &str, value: &str, idem: Option<&str>) {
        let ended = self.write_op(idem.is_some(), |c, node| {
            c.api.put(&c.http, node, key, value.as_bytes(), idem)
        });
        match ended {
            Ended::Done(..) => self.recorder.with(|d| {
                d.stats.unique_writes += 1;
                d.acked_unique.push((key.to_string(), value.to_string()));
            }),
            Ended::Unknown => self.recorder.with(|d| d.stats.indeterminate += 1),
            Ended::NotApplied => {}
        }
    }
}

/// The harness's final reads: one linearizable read of every register key the run used,
/// through the nodes in turn, recorded as client 0's operations (each must see the outcome of
/// everything acknowledged before). Returns the keys that could not be read.
pub fn final_reads(api: &Api, recorder: &Recorder, deadline: Duration) -> Vec<String> {
    let mut keys: Vec<String> = recorder
        .snapshot()
        .history
        .iter()
        .map(|o| o.key.clone())
        .collect();
    keys.sort();
    keys.dedup();
    let http = api::client(Duration::from_secs(3));
    let ids = api.ids();
    let mut unread = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let until = Instant::now() + deadline;
        let mut attempt = 0;
        loop {
            let node = ids[(i + attempt) % ids.len().max(1)];
            let call = recorder.clock.now_us();
            if let ReadAnswer::Value(v) = api.get(&http, node, key, "linearizable") {
                let op = Operation::read(0, call, recorder.clock.now_us(), v.as_deref());
                recorder.push(key, op);
                break;
            }
            attempt += 1;
            if Instant::now() >= until {
                unread.push(key.clone());
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
    unread
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_rotate_by_generation() {
        let config = WorkloadConfig {
            keys: 2,
            generation: Duration::from_secs(10),
            ..WorkloadConfig::default()
        };
        assert_eq!(keys_at(&config, 0), vec!["g0.k0", "g0.k1"]);
        assert_eq!(keys_at(&config, 9_999_999), vec!["g0.k0", "g0.k1"]);
        assert_eq!(keys_at(&config, 10_000_000), vec!["g1.k0", "g1.k1"]);
    }
}
