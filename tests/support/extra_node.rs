//! One more in-process node for a running [`TestCluster`]: a learner that starts with the
//! cluster's voters plus itself in `cluster` and itself in `learners`, serving its REST gateway
//! on a real port (what `raftix serve --join` sets up, without the HTTP join).
#![allow(dead_code)]

use raftix::actors::{start_node_on, RaftHandle};
use raftix::config::NodeConfig;
use raftix::core::NodeId;
use raftix::storage::{DataDir, KvReader, KvStateMachine};

use super::cluster::TestCluster;

/// The extra node.
pub struct ExtraNode {
    pub handle: RaftHandle,
    pub kv: KvReader,
    pub config: NodeConfig,
    _dir: tempfile::TempDir,
}

impl ExtraNode {
    /// The base URL of its gateway.
    pub fn url(&self) -> String {
        format!("http://{}", self.config.listen_http)
    }
}

/// Ports for the extra node: (peer listener, HTTP listener, peer address).
pub async fn bind() -> (tokio::net::TcpListener, std::net::TcpListener, String) {
    let peer = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind peer port");
    let http = std::net::TcpListener::bind("127.0.0.1:0").expect("bind http port");
    let addr = peer.local_addr().expect("addr").to_string();
    (peer, http, addr)
}

/// Starts node `id` as a learner of `c` on the listeners of [`bind`] and serves its gateway.
pub fn start_learner(
    c: &TestCluster,
    id: NodeId,
    (peer, http, peer_addr): (tokio::net::TcpListener, std::net::TcpListener, String),
) -> ExtraNode {
    let any = c.nodes.values().next().expect("a node");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = super::cluster::learner_config(
        id,
        dir.path(),
        peer_addr,
        &http,
        any.config.cluster.clone(),
    );
    config.election_timeout_min_ms = any.config.election_timeout_min_ms;
    config.election_timeout_max_ms = any.config.election_timeout_max_ms;
    config.log_map_size = any.config.log_map_size;
    config.sm_map_size = any.config.sm_map_size;
    config.validate().expect("valid learner config");
    let data_dir = DataDir::prepare(dir.path(), &config.cluster_name, id).expect("data dir");
    let machine = KvStateMachine::open(data_dir.sm_path(), config.sm_map_size).expect("kv");
    let kv = machine.reader();
    let handle = start_node_on(&config, &data_dir, machine, peer).expect("start learner");
    let state = raftix::http::AppState::new(&config, handle.clone(), kv.clone());
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new().configure(raftix::http::configure(state.clone()))
    })
    .workers(1)
    .disable_signals()
    .listen(http)
    .expect("serve http")
    .run();
    actix_rt::spawn(server);
    ExtraNode {
        handle,
        kv,
        config,
        _dir: dir,
    }
}
