//! In-process clusters for actor-level tests: every node is the real actor runtime with real
//! LMDB in a temp dir and real TCP on loopback, inside one actix System.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use raftix::actors::{start_node_on, RaftHandle};
use raftix::config::NodeConfig;
use raftix::core::{NodeId, Role};
use raftix::messages::node::NodeStatus;
use raftix::storage::{DataDir, KvCommand, KvReader, KvStateMachine};

/// One running node and what the test needs to inspect it.
pub struct TestNode {
    pub handle: RaftHandle,
    pub kv: KvReader,
    pub config: NodeConfig,
    /// The node's HTTP port, bound but not served until `serve_http`.
    http_listener: Option<std::net::TcpListener>,
}

/// The handles of the running nodes, shared with tasks (writers) that must follow nodes being
/// added, stopped and restarted while they run.
pub type Handles = Arc<Mutex<BTreeMap<NodeId, RaftHandle>>>;

/// A cluster of `n` nodes.
pub struct TestCluster {
    pub nodes: BTreeMap<NodeId, TestNode>,
    /// Nodes stopped by `stop_node`, with their configuration, for `restart_node`.
    pub stopped: BTreeMap<NodeId, NodeConfig>,
    /// The running nodes' handles (kept in step with `nodes`).
    pub handles: Handles,
    dirs: BTreeMap<NodeId, tempfile::TempDir>,
}

impl TestCluster {
    /// Starts `n` nodes on loopback with fresh data dirs. Logs go to the test output when
    /// `RUST_LOG` is set.
    pub async fn start(n: u64) -> Self {
        Self::start_with(n, |_| {}).await
    }

    /// Like `start`, with each node's configuration adjusted by `tune` first.
    pub async fn start_with(n: u64, tune: impl Fn(&mut NodeConfig)) -> Self {
        if let Ok(filter) = std::env::var("RUST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let mut listeners = BTreeMap::new();
        let mut http_listeners = BTreeMap::new();
        let mut cluster = BTreeMap::new();
        for id in 1..=n {
            let h = std::net::TcpListener::bind("127.0.0.1:0").expect("bind http port");
            http_listeners.insert(id, h);
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind peer port");
            cluster.insert(id, l.local_addr().expect("addr").to_string());
            listeners.insert(id, l);
        }
        let mut c = Self {
            nodes: BTreeMap::new(),
            stopped: BTreeMap::new(),
            handles: Arc::default(),
            dirs: BTreeMap::new(),
        };
        for (id, listener) in listeners {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut config = NodeConfig::with_defaults(
                id,
                dir.path().to_path_buf(),
                cluster[&id].clone(),
                http_listeners[&id].local_addr().expect("addr").to_string(),
                cluster.clone(),
            );
            test_defaults(&mut config);
            tune(&mut config);
            config.sm_map_size = 256 << 20;
            c.dirs.insert(id, dir);
            c.launch(config, listener, http_listeners.remove(&id));
        }
        c
    }

    /// Starts node `config.id` on its data dir with an already bound peer listener.
    fn launch(
        &mut self,
        config: NodeConfig,
        listener: tokio::net::TcpListener,
        http_listener: Option<std::net::TcpListener>,
    ) {
        let id = config.id;
        let data_dir =
            DataDir::prepare(&config.data_dir, &config.cluster_name, id).expect("data dir");
        let machine = KvStateMachine::open(data_dir.sm_path(), config.sm_map_size).expect("kv");
        let kv = machine.reader();
        let handle = start_node_on(&config, &data_dir, machine, listener).expect("start node");
        self.handles
            .lock()
            .expect("handles")
            .insert(id, handle.clone());
        self.nodes.insert(
            id,
            TestNode {
                handle,
                kv,
                config,
                http_listener,
            },
        );
    }

    /// Starts one more node (the next free id) that joins as a learner: its configuration
    /// names `members` (their peer addresses as the running or stopped nodes know them) and
    /// itself, itself as a learner. The caller adds it to the cluster with
    /// `ConfigChange::AddLearner { id, addr: peer_addr }` on the leader.
    pub async fn add_node(
        &mut self,
        members: &BTreeSet<NodeId>,
        tune: impl Fn(&mut NodeConfig),
    ) -> NodeId {
        let id = self
            .nodes
            .keys()
            .chain(self.stopped.keys())
            .max()
            .copied()
            .unwrap_or(0)
            + 1;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind peer port");
        let peer_addr = listener.local_addr().expect("addr").to_string();
        let http = std::net::TcpListener::bind("127.0.0.1:0").expect("bind http port");
        let cluster: BTreeMap<NodeId, String> = members
            .iter()
            .map(|m| (*m, self.config(*m).listen_peer.clone()))
            .collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = learner_config(id, dir.path(), peer_addr, &http, cluster);
        test_defaults(&mut config);
        tune(&mut config);
        config.sm_map_size = 256 << 20;
        self.dirs.insert(id, dir);
        self.launch(config, listener, Some(http));
        id
    }

    /// The configuration of node `id`, running or stopped.
    pub fn config(&self, id: NodeId) -> &NodeConfig {
        self.nodes
            .get(&id)
            .map(|n| &n.config)
            .or_else(|| self.stopped.get(&id))
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// The peer address of node `id`.
    pub fn peer_addr(&self, id: NodeId) -> String {
        self.config(id).listen_peer.clone()
    }

    /// Stops node `id` and waits until its storage is closed; its data dir is kept for
    /// `restart_node`.
    pub async fn stop_node(&mut self, id: NodeId) {
        let node = self.nodes.remove(&id).expect("running node");
        self.handles.lock().expect("handles").remove(&id);
        node.handle.shutdown().await;
        // Dropping the node drops its state machine reader: the env closes with it.
        let config = node.config.clone();
        drop(node);
        self.stopped.insert(id, config);
    }

    /// Restarts node `id` (stopped by `stop_node`) on the same data dir and peer address.
    pub async fn restart_node(&mut self, id: NodeId) {
        let config = self.stopped.remove(&id).expect("stopped node");
        // The old listener is closed once the node's listener task is dropped: retry briefly.
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match tokio::net::TcpListener::bind(&config.listen_peer).await {
                Ok(l) => break l,
                Err(err) if Instant::now() < deadline => {
                    tracing::debug!("rebinding {}: {err}", config.listen_peer);
                    actix_rt::time::sleep(Duration::from_millis(10)).await;
                }
                Err(err) => panic!("cannot rebind {}: {err}", config.listen_peer),
            }
        };
        self.launch(config, listener, None);
    }

    /// Node `id`'s data dir.
    pub fn data_dir(&self, id: NodeId) -> std::path::PathBuf {
        self.config(id).data_dir.clone()
    }

    /// Serves the REST gateway of every node on its HTTP port (as `raftix serve` does).
    pub fn serve_http(&mut self) {
        for node in self.nodes.values_mut() {
            let Some(listener) = node.http_listener.take() else {
                continue;
            };
            let state =
                raftix::http::AppState::new(&node.config, node.handle.clone(), node.kv.clone());
            raftix::http::history::start_sampling(state.clone());
            let server = actix_web::HttpServer::new(move || {
                actix_web::App::new().configure(raftix::http::configure(state.clone()))
            })
            .workers(1)
            .disable_signals()
            .listen(listener)
            .expect("serve http")
            .run();
            actix_rt::spawn(server);
        }
    }

    /// The base URL of node `id`'s gateway.
    pub fn url(&self, id: NodeId) -> String {
        format!("http://{}", self.nodes[&id].config.listen_http)
    }

    /// Status of every running node.
    pub async fn statuses(&self) -> BTreeMap<NodeId, NodeStatus> {
        let mut out = BTreeMap::new();
        for (&id, node) in &self.nodes {
            if let Ok(s) = node.handle.status().await {
                out.insert(id, s);
            }
        }
        out
    }

    /// Polls (every 5 ms) until `cond` holds for the statuses, or panics after `timeout` with
    /// the last statuses.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&BTreeMap<NodeId, NodeStatus>) -> bool,
    ) -> BTreeMap<NodeId, NodeStatus> {
        let cond = &cond;
        super::wait::wait_until_async(timeout, what, || async move {
            let s = self.statuses().await;
            if cond(&s) {
                Ok(s)
            } else {
                Err(s)
            }
        })
        .await
    }

    /// Waits for a leader that every node agrees on and until every follower knows its address
    /// (so that forwarding works); returns the leader and the lowest-numbered follower.
    pub async fn leader_and_informed_follower(&self, timeout: Duration) -> (NodeId, NodeId) {
        let leader = self.wait_leader(&self.ids(), timeout).await;
        let s = self
            .wait_until("followers know the leader's address", timeout, |s| {
                s.values().all(|x| x.leader_addr.is_some())
            })
            .await;
        let follower = *s.keys().find(|&&id| id != leader).expect("a follower");
        (leader, follower)
    }

    /// Waits for a leader among `among` that every node of `among` agrees on.
    pub async fn wait_leader(&self, among: &BTreeSet<NodeId>, timeout: Duration) -> NodeId {
        let s = self
            .wait_until("an agreed leader", timeout, |s| {
                agreed_leader(s, among).is_some()
            })
            .await;
        agreed_leader(&s, among).expect("leader")
    }

    /// Cuts `group` off from everyone else (both directions).
    pub async fn partition(&self, group: &BTreeSet<NodeId>) {
        for (&id, node) in &self.nodes {
            let blocked: BTreeSet<NodeId> = if group.contains(&id) {
                self.nodes
                    .keys()
                    .copied()
                    .filter(|p| !group.contains(p))
                    .collect()
            } else {
                group.clone()
            };
            node.handle.block_peers(blocked).await;
        }
    }

    /// Cuts each node of `ids` off from every other node (both directions): unlike
    /// `partition`, the nodes of `ids` cannot reach each other either.
    pub async fn isolate(&self, ids: &BTreeSet<NodeId>) {
        for (&id, node) in &self.nodes {
            let blocked: BTreeSet<NodeId> = if ids.contains(&id) {
                self.nodes.keys().copied().filter(|&p| p != id).collect()
            } else {
                ids.clone()
            };
            node.handle.block_peers(blocked).await;
        }
    }

    /// Heals every partition.
    pub async fn heal(&self) {
        for node in self.nodes.values() {
            node.handle.block_peers(BTreeSet::new()).await;
        }
    }

    /// Puts `key` = `value` through node `id`.
    pub async fn put(
        &self,
        id: NodeId,
        key: &str,
        value: &str,
    ) -> Result<raftix::messages::node::WriteResult, raftix::messages::node::ClientError> {
        let cmd = KvCommand::Put {
            key: key.to_string(),
            value: Bytes::from(value.to_string()),
        };
        self.nodes[&id].handle.submit(cmd.encode()).await
    }

    /// All ids.
    pub fn ids(&self) -> BTreeSet<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// Stops every node.
    pub async fn shutdown(&self) {
        for node in self.nodes.values() {
            node.handle.shutdown().await;
        }
    }
}

/// Settings every test node starts with. Tests run in parallel on small machines: leave room
/// for CPU stalls.
/// The configuration of a new node `id` (a learner) in `dir`, on `peer_addr` and the address of
/// `http`, joining the members of `cluster` (itself added).
pub fn learner_config(
    id: NodeId,
    dir: &std::path::Path,
    peer_addr: String,
    http: &std::net::TcpListener,
    mut cluster: BTreeMap<NodeId, String>,
) -> NodeConfig {
    cluster.insert(id, peer_addr.clone());
    let mut config = NodeConfig::with_defaults(
        id,
        dir,
        peer_addr,
        http.local_addr().expect("addr").to_string(),
        cluster,
    );
    config.learners = BTreeSet::from([id]);
    config
}

fn test_defaults(config: &mut NodeConfig) {
    config.election_timeout_min_ms = 300;
    config.election_timeout_max_ms = 600;
    config.log_map_size = 256 << 20;
}

/// Asserts that a write through a node cut off from the quorum did not commit: the answer is
/// an unknown outcome, a "not leader" or a dropped proposal, never a success. `what` names the
/// situation in the failure message.
pub fn assert_not_committed(
    result: &Result<raftix::messages::node::WriteResult, raftix::messages::node::ClientError>,
    what: &str,
) {
    use raftix::messages::node::ClientError;
    assert!(
        matches!(
            result,
            Err(ClientError::OutcomeUnknown)
                | Err(ClientError::NotLeader { .. })
                | Err(ClientError::ProposalDropped)
        ),
        "{what} must not commit: {result:?}"
    );
}

/// The leader that every node in `among` names, if one exists and is itself a leader.
pub fn agreed_leader(s: &BTreeMap<NodeId, NodeStatus>, among: &BTreeSet<NodeId>) -> Option<NodeId> {
    let leaders: Vec<NodeId> = among
        .iter()
        .filter(|id| s.get(id).is_some_and(|x| x.role == Role::Leader))
        .copied()
        .collect();
    let [leader] = leaders[..] else { return None };
    let term = s[&leader].term;
    among
        .iter()
        .all(|id| {
            s.get(id)
                .is_some_and(|x| x.leader == Some(leader) && x.term == term)
        })
        .then_some(leader)
}
