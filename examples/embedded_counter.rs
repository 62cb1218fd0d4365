//! A replicated counter embedded in an actix application: a custom [`StateMachine`] driven by
//! raftix, three nodes in one process, and an application actor that talks to them.
//!
//! Run it with `cargo run --example embedded_counter` (add `-- --data-dir DIR` to keep the data
//! and watch a second run continue from the first one's counter; `RUST_LOG=info` shows the
//! runtime's logs).
//!
//! How an application embeds raftix:
//!
//! 1. **Write a state machine.** Implement [`StateMachine`]: `apply` receives committed entries
//!    in log order, exactly once, and must make their effects *and* the new applied index durable
//!    together before returning; `applied_index` reports that index when the node starts, so
//!    nothing is applied twice or skipped. Commands are opaque bytes: pick an encoding
//!    ([`Op`] here is plain text such as `add 5`). Decoding and validation must be deterministic,
//!    since every replica applies the same bytes. `snapshot` captures the state quickly (the
//!    returned [`SnapshotSource`] writes it out on another thread) and `restore` replaces the
//!    state with a snapshot's; [`CounterSnapshot`] is this machine's 28-byte format.
//! 2. **Describe the node.** Build a [`NodeConfig`] (`NodeConfig::with_defaults(id, data_dir,
//!    listen_peer, listen_http, cluster)`) with the same `cluster` map (node id -> peer address)
//!    on every node, and validate it.
//! 3. **Prepare its data directory.** [`DataDir::prepare`] creates or checks the directory (it
//!    refuses another cluster's or another node's data); the state machine keeps its own files
//!    under `DataDir::sm_path()`.
//! 4. **Start the node inside your actix `System`.** [`start_node`] binds `listen_peer`;
//!    [`start_node_on`] takes a listener you already bound (here: port 0 on loopback, so the
//!    addresses are known before any node starts). Both return a cloneable [`RaftHandle`].
//! 5. **Talk to it from your actors.** [`RaftHandle::subscribe_roles`] delivers [`RoleChange`]s
//!    to any actor; [`RaftHandle::submit`] replicates a command and returns the state machine's
//!    output once it is committed and applied on that node; a follower answers
//!    [`ClientError::NotLeader`] naming the leader, so retry there ([`CounterClient`] does).
//!    Reads go to your state machine's own view ([`CounterView`]), which [`RaftHandle::status`]
//!    tells you how far along it is (`applied`, `commit`).
//! 6. **Shut down.** [`RaftHandle::shutdown`] stops the node and waits for it;
//!    [`RaftHandle::stopped`] resolves if a node stops on its own, for example on a storage error.
//!    Every `apply` batch is durable when it returns, so stopping (or crashing) at any point loses
//!    nothing. Note: `shutdown` resolves before the node's storage threads have dropped the log
//!    environment, so a node restarted *in the same process* right away can fail with
//!    `EnvAlreadyOpened` (the test `tests/cluster/example_embedded.rs` waits for it).

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use raftix::actors::{start_node_on, RaftHandle};
use raftix::config::NodeConfig;
use raftix::core::{Entry, EntryPayload, Index, NodeId, Role, Term};
use raftix::messages::node::{ClientError, NodeStatus, RoleChange};
use raftix::state_machine::{SnapshotSource, StateMachine, StateMachineError};
use raftix::storage::DataDir;

/// Cluster name written into every node's data directory.
pub const CLUSTER_NAME: &str = "embedded-counter";
/// Name of the counter's state file inside `<data-dir>/sm`.
pub const STATE_FILE: &str = "counter.txt";

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

/// A counter command, encoded as one line of text: `add <i64>` or `reset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Adds a (possibly negative) amount.
    Add(i64),
    /// Sets the counter back to 0.
    Reset,
}

impl Op {
    /// The bytes to submit.
    pub fn encode(&self) -> Bytes {
        match self {
            Op::Add(n) => Bytes::from(format!("add {n}")),
            Op::Reset => Bytes::from_static(b"reset"),
        }
    }

    /// Parses a command; `None` when the bytes are not a command.
    pub fn decode(bytes: &[u8]) -> Option<Op> {
        let text = std::str::from_utf8(bytes).ok()?;
        match text.split_once(' ') {
            Some(("add", n)) => n.parse().ok().map(Op::Add),
            None if text == "reset" => Some(Op::Reset),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The state machine
// ---------------------------------------------------------------------------------------------

/// The durable state: the counter and the index of the last entry applied to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterState {
    /// Last applied log index.
    pub applied: Index,
    /// The counter.
    pub value: i64,
}

/// A read-only, shared view of a [`CounterMachine`]: the machine itself moves into the node's
/// applier thread, so the application reads through this.
#[derive(Clone, Debug, Default)]
pub struct CounterView(Arc<Mutex<CounterState>>);

impl CounterView {
    /// The state as of the last durable `apply`.
    pub fn get(&self) -> CounterState {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The counter state machine.
///
/// Durability: the whole state (`applied` and `value`) is one small file, `<sm dir>/counter.txt`,
/// replaced atomically once per `apply` batch: write `counter.txt.tmp`, fsync it, rename it over
/// `counter.txt`, fsync the directory. The effects of a batch and its applied index therefore
/// reach the disk together, in one rename: after a crash the file holds either the state before
/// the batch (and raftix hands the batch over again) or the state after it (and raftix starts
/// after it). No entry is ever applied twice or lost.
pub struct CounterMachine {
    dir: PathBuf,
    state: CounterState,
    view: CounterView,
}

impl CounterMachine {
    /// Opens the machine stored in `dir` (created if needed), or a fresh one at 0.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StateMachineError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| storage(&dir, e))?;
        // A leftover temp file is a batch that was never committed by its rename: ignore it.
        let path = dir.join(STATE_FILE);
        let state = match fs::read_to_string(&path) {
            Ok(text) => parse_state(&text).ok_or_else(|| {
                StateMachineError::Corrupt(format!("{}: {text:?}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => CounterState::default(),
            Err(e) => return Err(storage(&path, e)),
        };
        let view = CounterView(Arc::new(Mutex::new(state)));
        Ok(Self { dir, state, view })
    }

    /// The current state.
    pub fn state(&self) -> CounterState {
        self.state
    }

    /// A view that stays valid after the machine moved into the node.
    pub fn view(&self) -> CounterView {
        self.view.clone()
    }

    /// Writes `state` atomically: temp file, fsync, rename, fsync of the directory.
    fn persist(&self, state: CounterState) -> Result<(), StateMachineError> {
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let path = self.dir.join(STATE_FILE);
        let mut file = File::create(&tmp).map_err(|e| storage(&tmp, e))?;
        writeln!(file, "applied={}\nvalue={}", state.applied, state.value)
            .and_then(|()| file.sync_all())
            .map_err(|e| storage(&tmp, e))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(|e| storage(&path, e))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| storage(&self.dir, e))
    }
}

impl StateMachine for CounterMachine {
    fn applied_index(&self) -> Index {
        self.state.applied
    }

    fn apply(&mut self, entries: &[Entry]) -> Result<Vec<Bytes>, StateMachineError> {
        // Work on a copy: if persisting fails, memory still matches the disk.
        let mut next = self.state;
        let mut outputs = Vec::with_capacity(entries.len());
        for entry in entries {
            if entry.index != next.applied + 1 {
                return Err(StateMachineError::Corrupt(format!(
                    "expected entry {} but got {}",
                    next.applied + 1,
                    entry.index
                )));
            }
            next.applied = entry.index;
            let output = match &entry.payload {
                // A new leader's empty entry, or a membership change: it only advances the
                // applied index.
                EntryPayload::Noop | EntryPayload::Config(_) => Bytes::new(),
                EntryPayload::Command(bytes) => match Op::decode(bytes) {
                    Some(Op::Add(n)) => match next.value.checked_add(n) {
                        Some(v) => {
                            next.value = v;
                            Bytes::from(v.to_string())
                        }
                        // Deterministic on every replica: refuse, keep the value.
                        None => Bytes::from_static(b"error: overflow"),
                    },
                    Some(Op::Reset) => {
                        next.value = 0;
                        Bytes::from_static(b"0")
                    }
                    None => Bytes::from_static(b"error: not a counter command"),
                },
            };
            outputs.push(output);
        }
        if next != self.state {
            self.set_state(next)?;
        }
        Ok(outputs)
    }

    /// The state is two numbers: copy them, nothing else is needed.
    fn snapshot(&mut self) -> Result<Box<dyn SnapshotSource>, StateMachineError> {
        Ok(Box::new(CounterSnapshot(self.state)))
    }

    /// Reads the snapshot format of [`CounterSnapshot`] and persists it, with `last_index` as the
    /// applied index, in the same atomic rename as `apply` uses.
    fn restore(&mut self, last_index: Index, data: &mut dyn Read) -> Result<(), StateMachineError> {
        let mut bytes = [0u8; SNAPSHOT_LEN];
        data.read_exact(&mut bytes).map_err(|e| {
            StateMachineError::Corrupt(format!("counter snapshot shorter than 28 bytes: {e}"))
        })?;
        let mut rest = [0u8; 1];
        match data.read(&mut rest) {
            Ok(0) => {}
            Ok(_) => {
                return Err(StateMachineError::Corrupt(
                    "bytes follow the counter snapshot".to_string(),
                ))
            }
            Err(e) => {
                return Err(StateMachineError::Storage(format!(
                    "reading the counter snapshot: {e}"
                )))
            }
        }
        let decoded = CounterSnapshot::decode(&bytes).ok_or_else(|| {
            StateMachineError::Corrupt("counter snapshot fails its magic or checksum".to_string())
        })?;
        self.set_state(CounterState {
            applied: last_index,
            value: decoded.value,
        })
    }
}

impl CounterMachine {
    /// Persists `state`, then makes it the current one in memory and in the view.
    fn set_state(&mut self, state: CounterState) -> Result<(), StateMachineError> {
        self.persist(state)?;
        self.state = state;
        *self.view.0.lock().unwrap_or_else(|e| e.into_inner()) = state;
        Ok(())
    }
}

/// Length of a counter snapshot.
const SNAPSHOT_LEN: usize = 28;

/// A counter snapshot: the state captured by [`StateMachine::snapshot`].
///
/// Format (28 bytes): magic `RXCOUNT1`, the applied index (`u64` little-endian), the value
/// (`i64` little-endian), then the CRC-32 of those 24 bytes (`u32` little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterSnapshot(pub CounterState);

impl CounterSnapshot {
    const MAGIC: &'static [u8; 8] = b"RXCOUNT1";

    /// The snapshot's bytes.
    pub fn encode(&self) -> [u8; SNAPSHOT_LEN] {
        let mut out = [0u8; SNAPSHOT_LEN];
        out[..8].copy_from_slice(Self::MAGIC);
        out[8..16].copy_from_slice(&self.0.applied.to_le_bytes());
        out[16..24].copy_from_slice(&self.0.value.to_le_bytes());
        let crc = crc32fast::hash(&out[..24]);
        out[24..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// The state in `bytes`, or `None` when the magic or the checksum is wrong.
    pub fn decode(bytes: &[u8; SNAPSHOT_LEN]) -> Option<CounterState> {
        let (body, crc) = bytes.split_at(24);
        if &body[..8] != Self::MAGIC || crc32fast::hash(body).to_le_bytes() != crc {
            return None;
        }
        Some(CounterState {
            applied: u64::from_le_bytes(body[8..16].try_into().ok()?),
            value: i64::from_le_bytes(body[16..24].try_into().ok()?),
        })
    }
}

impl SnapshotSource for CounterSnapshot {
    fn write_to(self: Box<Self>, out: &mut dyn Write) -> Result<(), StateMachineError> {
        out.write_all(&self.encode())
            .and_then(|()| out.flush())
            .map_err(|e| StateMachineError::Storage(format!("writing the counter snapshot: {e}")))
    }
}

fn parse_state(text: &str) -> Option<CounterState> {
    let mut lines = text.lines();
    let applied = lines.next()?.strip_prefix("applied=")?.parse().ok()?;
    let value = lines.next()?.strip_prefix("value=")?.parse().ok()?;
    Some(CounterState { applied, value })
}

fn storage(path: &Path, err: std::io::Error) -> StateMachineError {
    StateMachineError::Storage(format!("{}: {err}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// The application actor
// ---------------------------------------------------------------------------------------------

/// The application's side: knows every node's handle, follows role changes, and submits
/// counter commands to the leader.
pub struct CounterClient {
    nodes: BTreeMap<NodeId, RaftHandle>,
    /// Where to send the next command: the last leader we heard of.
    leader_hint: NodeId,
    /// The newest leader announcement seen, `(node, term)`.
    leader: Option<(NodeId, Term)>,
    quiet: bool,
}

impl CounterClient {
    /// A client of `nodes` (non-empty). With `quiet`, role changes are not printed.
    pub fn new(nodes: BTreeMap<NodeId, RaftHandle>, quiet: bool) -> Self {
        let leader_hint = *nodes.keys().next().expect("at least one node");
        Self {
            nodes,
            leader_hint,
            leader: None,
            quiet,
        }
    }
}

impl Actor for CounterClient {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        for handle in self.nodes.values() {
            handle.subscribe_roles(ctx.address().recipient());
        }
    }
}

impl Handler<RoleChange> for CounterClient {
    type Result = ();

    fn handle(&mut self, change: RoleChange, _: &mut Context<Self>) {
        if change.role != Role::Leader {
            return;
        }
        if !self.quiet {
            println!(
                "node {} is now {} at term {}",
                change.node,
                change.role.as_str(),
                change.term
            );
        }
        if self.leader.is_none_or(|(_, term)| change.term >= term) {
            self.leader = Some((change.node, change.term));
            self.leader_hint = change.node;
        }
    }
}

/// Submits a counter command and answers once it is committed and applied on the leader.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<Submitted, SubmitError>")]
pub struct Submit {
    /// The command.
    pub op: Op,
    /// The node to try first; `None` for the last leader the client heard of.
    pub via: Option<NodeId>,
}

impl Submit {
    /// Submits `op` to the leader the client knows of.
    pub fn new(op: Op) -> Self {
        Self { op, via: None }
    }
}

/// A command that was committed and applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Submitted {
    /// The state machine's output: the counter right after the command.
    pub value: i64,
    /// The command's log index.
    pub index: Index,
    /// The node that accepted it (the leader).
    pub leader: NodeId,
    /// How many nodes answered `NotLeader` before.
    pub redirects: u32,
}

/// Why a command could not be submitted.
#[derive(Debug)]
pub enum SubmitError {
    /// The cluster refused or lost track of the command.
    Client(ClientError),
    /// The state machine rejected the command (its output was not a number).
    Rejected(String),
    /// No leader accepted the command in time.
    NoLeader,
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Client(e) => write!(f, "{e}"),
            SubmitError::Rejected(out) => write!(f, "rejected by the state machine: {out}"),
            SubmitError::NoLeader => f.write_str("no leader accepted the command in time"),
        }
    }
}

impl Error for SubmitError {}

/// How long a command may look for a leader.
const SUBMIT_DEADLINE: Duration = Duration::from_secs(10);

impl Handler<Submit> for CounterClient {
    type Result = ResponseActFuture<Self, Result<Submitted, SubmitError>>;

    fn handle(&mut self, Submit { op, via }: Submit, _: &mut Context<Self>) -> Self::Result {
        let nodes = self.nodes.clone();
        let first = via
            .filter(|id| nodes.contains_key(id))
            .unwrap_or(self.leader_hint);
        let quiet = self.quiet;
        let work = async move {
            let command = op.encode();
            let deadline = Instant::now() + SUBMIT_DEADLINE;
            let mut target = first;
            let mut redirects = 0;
            loop {
                let outcome = nodes[&target].submit(command.clone()).await;
                let next = match outcome {
                    Ok(written) => {
                        let text = String::from_utf8_lossy(&written.output).into_owned();
                        let result = match text.parse() {
                            Ok(value) => Ok(Submitted {
                                value,
                                index: written.log_id.index,
                                leader: target,
                                redirects,
                            }),
                            Err(_) => Err(SubmitError::Rejected(text)),
                        };
                        return (target, result);
                    }
                    // Retry on the leader the follower names.
                    Err(ClientError::NotLeader {
                        leader_id: Some(id),
                        ..
                    }) if nodes.contains_key(&id) => {
                        if !quiet {
                            println!("  node {target} is not the leader; retrying on node {id}");
                        }
                        redirects += 1;
                        id
                    }
                    // No leader known (an election is running), or the command was overwritten
                    // by a new leader and is known NOT to be applied: wait a little, try the next
                    // node. (`OutcomeUnknown` is not retried: `add` is not idempotent.)
                    Err(ClientError::NotLeader { .. } | ClientError::ProposalDropped) => {
                        actix_rt::time::sleep(Duration::from_millis(50)).await;
                        nodes
                            .range(target + 1..)
                            .chain(nodes.iter())
                            .map(|(&id, _)| id)
                            .next()
                            .unwrap_or(target)
                    }
                    Err(e) => return (target, Err(SubmitError::Client(e))),
                };
                if Instant::now() > deadline {
                    return (target, Err(SubmitError::NoLeader));
                }
                target = next;
            }
        };
        Box::pin(work.into_actor(self).map(|(target, result), act, _| {
            if result.is_ok() {
                act.leader_hint = target;
            }
            result
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// The program
// ---------------------------------------------------------------------------------------------

/// What [`run`] does.
#[derive(Clone, Debug)]
pub struct Options {
    /// Base directory: node N keeps its data in `<base>/node<N>`. `None` uses a temporary
    /// directory removed at the end.
    pub data_dir: Option<PathBuf>,
    /// The amounts to add, in order.
    pub adds: Vec<i64>,
    /// Print progress (the example) or stay silent (the tests).
    pub quiet: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            data_dir: None,
            adds: vec![1, 2, 3, 4, 5, 10, 20, -7],
            quiet: false,
        }
    }
}

/// What [`run`] observed.
#[derive(Clone, Debug)]
pub struct Report {
    /// The leader the commands went to first.
    pub leader: NodeId,
    /// The counter before the first add (non-zero when a kept data dir is reused).
    pub initial: i64,
    /// Each node's final state, read from its [`CounterView`].
    pub finals: BTreeMap<NodeId, CounterState>,
    /// Each node's state-machine directory (where `counter.txt` lives).
    pub sm_dirs: BTreeMap<NodeId, PathBuf>,
    /// How many `NotLeader` answers the client followed.
    pub redirects: u32,
}

/// Everything the example does: start three nodes, wait for a leader, add `options.adds`
/// through the leader, wait until every node applied them, read every node's counter, and shut
/// the nodes down. Must run inside an actix `System`.
pub async fn run(options: Options) -> Result<Report, Box<dyn Error>> {
    let say = |line: String| {
        if !options.quiet {
            println!("{line}");
        }
    };
    let temp;
    let base = match &options.data_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };

    // Bind every peer port first (port 0: the OS picks), so the cluster map is complete before
    // any node starts.
    let mut listeners = BTreeMap::new();
    for id in 1..=3u64 {
        listeners.insert(id, tokio::net::TcpListener::bind("127.0.0.1:0").await?);
    }
    let cluster: BTreeMap<NodeId, String> = listeners
        .iter()
        .map(|(&id, l)| Ok((id, l.local_addr()?.to_string())))
        .collect::<Result<_, std::io::Error>>()?;

    let mut nodes = BTreeMap::new();
    let mut views = BTreeMap::new();
    let mut sm_dirs = BTreeMap::new();
    for (id, listener) in listeners {
        let dir = base.join(format!("node{id}"));
        // No HTTP gateway runs in this program (`start_node_on` does not start one): the HTTP
        // address is only what the node advertises to its peers.
        let mut config = NodeConfig::with_defaults(
            id,
            &dir,
            cluster[&id].clone(),
            "127.0.0.1:0",
            cluster.clone(),
        );
        config.cluster_name = CLUSTER_NAME.to_string();
        config.log_map_size = 64 << 20;
        config.validate()?;
        let data_dir = DataDir::prepare(&config.data_dir, &config.cluster_name, id)?;
        let machine = CounterMachine::open(data_dir.sm_path())?;
        views.insert(id, machine.view());
        sm_dirs.insert(id, data_dir.sm_path().to_path_buf());
        let handle = start_node_on(&config, &data_dir, machine, listener)?;
        say(format!(
            "started node {id}: peers on {}, data in {}",
            config.listen_peer,
            dir.display()
        ));
        nodes.insert(id, handle);
    }

    let client = CounterClient::new(nodes.clone(), options.quiet).start();

    let result = drive(&options, &nodes, &views, &client, &say).await;

    for handle in nodes.values() {
        handle.shutdown().await;
    }
    say("all nodes stopped".to_string());
    let (leader, initial, redirects) = result?;
    let finals = views.iter().map(|(&id, view)| (id, view.get())).collect();
    Ok(Report {
        leader,
        initial,
        finals,
        sm_dirs,
        redirects,
    })
}

/// The part of [`run`] between starting and stopping the nodes.
async fn drive(
    options: &Options,
    nodes: &BTreeMap<NodeId, RaftHandle>,
    views: &BTreeMap<NodeId, CounterView>,
    client: &Addr<CounterClient>,
    say: &impl Fn(String),
) -> Result<(NodeId, i64, u32), Box<dyn Error>> {
    let statuses = wait_until(nodes, "an agreed leader", |s| agreed_leader(s).is_some()).await?;
    let leader = agreed_leader(&statuses).expect("checked");
    say(format!(
        "leader: node {leader} (term {})",
        statuses[&leader].term
    ));

    // A new leader commits an empty entry of its term first; once it is applied, everything
    // committed before (say, by an earlier run on the same data) is in the counter.
    let term = statuses[&leader].term;
    wait_until(nodes, "the leader's first entry applied", |s| {
        s.get(&leader)
            .is_some_and(|x| x.last_log_term == term && x.applied == x.last_log_index)
    })
    .await?;
    let initial = views[&leader].get().value;
    say(format!("counter starts at {initial}"));

    // The first command deliberately goes to a follower, to show the `NotLeader` redirect.
    let follower = nodes.keys().copied().find(|&id| id != leader);
    let mut last_index = 0;
    let mut redirects = 0;
    for (i, &n) in options.adds.iter().enumerate() {
        let submit = match i {
            0 => Submit {
                op: Op::Add(n),
                via: follower,
            },
            _ => Submit::new(Op::Add(n)),
        };
        let done = client.send(submit).await??;
        say(format!(
            "add {n:>4} -> {:>4}  (log index {}, via node {})",
            done.value, done.index, done.leader
        ));
        last_index = last_index.max(done.index);
        redirects += done.redirects;
    }

    // Every node applies every committed entry: wait until all of them reached the last one.
    wait_until(nodes, "every node applied the adds", |s| {
        s.len() == nodes.len() && s.values().all(|x| x.applied >= last_index)
    })
    .await?;
    for (id, view) in views {
        let state = view.get();
        say(format!(
            "node {id}: counter = {} (applied index {})",
            state.value, state.applied
        ));
    }
    let finals: Vec<i64> = views.values().map(|v| v.get().value).collect();
    if finals.windows(2).any(|w| w[0] != w[1]) {
        return Err(format!("the replicas disagree: {finals:?}").into());
    }
    say(format!("final counter: {}", finals[0]));
    Ok((leader, initial, redirects))
}

/// How long [`wait_until`] waits.
const WAIT: Duration = Duration::from_secs(10);

/// Polls every node's status until `cond` holds, or fails after [`WAIT`].
async fn wait_until(
    nodes: &BTreeMap<NodeId, RaftHandle>,
    what: &str,
    cond: impl Fn(&BTreeMap<NodeId, NodeStatus>) -> bool,
) -> Result<BTreeMap<NodeId, NodeStatus>, Box<dyn Error>> {
    let start = Instant::now();
    loop {
        let mut statuses = BTreeMap::new();
        for (&id, handle) in nodes {
            if let Ok(status) = handle.status().await {
                statuses.insert(id, status);
            }
        }
        if cond(&statuses) {
            return Ok(statuses);
        }
        if start.elapsed() > WAIT {
            return Err(
                format!("timed out after {WAIT:?} waiting for {what}: {statuses:?}").into(),
            );
        }
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The leader every node names, if there is one and it is itself the leader of that term.
fn agreed_leader(statuses: &BTreeMap<NodeId, NodeStatus>) -> Option<NodeId> {
    let (&leader, status) = statuses.iter().find(|(_, s)| s.role == Role::Leader)?;
    statuses
        .values()
        .all(|s| s.leader == Some(leader) && s.term == status.term)
        .then_some(leader)
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data-dir" => {
                options.data_dir = Some(args.next().ok_or("--data-dir needs a path")?.into())
            }
            "-h" | "--help" => return Err("usage: embedded_counter [--data-dir DIR]".to_string()),
            other => {
                return Err(format!(
                    "unexpected argument {other:?}; usage: embedded_counter [--data-dir DIR]"
                ))
            }
        }
    }
    Ok(options)
}

#[allow(dead_code)] // Unused when the tests include this file as a module.
fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            // Stopping the nodes one after the other makes the others warn about lost peer
            // links: expected here, so the transport only reports errors by default.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,raftix::transport=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let expected_sum: i64 = options.adds.iter().sum();
    match actix_rt::System::new().block_on(run(options)) {
        Ok(report) => {
            let values: Vec<i64> = report.finals.values().map(|s| s.value).collect();
            if values.iter().all(|&v| v == report.initial + expected_sum) {
                ExitCode::SUCCESS
            } else {
                eprintln!("replicas disagree: {:?}", report.finals);
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
