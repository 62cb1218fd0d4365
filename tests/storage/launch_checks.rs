//! `start_node` refuses durable state it must not run on, for embedders as for `raftix serve`.

use std::collections::BTreeMap;

use raftix::actors::{start_node_on, StartError};
use raftix::config::NodeConfig;
use raftix::storage::{DataDir, KvStateMachine, StorageError};

/// A peer listener on a free port and the configuration of node 1 alone on it, in `dir`.
async fn one_node(dir: &std::path::Path) -> (tokio::net::TcpListener, NodeConfig) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let mut config = NodeConfig::with_defaults(
        1,
        dir,
        addr.clone(),
        "127.0.0.1:1",
        BTreeMap::from([(1, addr)]),
    );
    config.log_map_size = 64 << 20;
    config.sm_map_size = 64 << 20;
    (listener, config)
}

#[actix_rt::test]
async fn a_data_dir_recording_other_voters_is_refused_unless_forced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut data_dir = DataDir::prepare(dir.path(), "raftix", 1).expect("data dir");
    data_dir
        .check_voters([1, 2, 3], false)
        .expect("record voters");
    let (listener, mut config) = one_node(dir.path()).await;
    {
        let machine = KvStateMachine::open(data_dir.sm_path(), config.sm_map_size).expect("kv");
        match start_node_on(&config, &data_dir, machine, listener) {
            Err(StartError::Storage(StorageError::MembershipChanged { stored, given, .. })) => {
                assert_eq!((stored, given), (vec![1, 2, 3], vec![1]));
            }
            Err(other) => panic!("expected MembershipChanged, got {other}"),
            Ok(_) => panic!("a node started with other voters than its data dir records"),
        }
    }
    // Forced, and recorded: it starts (a one-node cluster).
    config.force_new_cluster = true;
    data_dir
        .check_voters([1], true)
        .expect("record the new set");
    let listener = tokio::net::TcpListener::bind(&config.listen_peer)
        .await
        .expect("bind again");
    let machine = KvStateMachine::open(data_dir.sm_path(), config.sm_map_size).expect("kv");
    let node = start_node_on(&config, &data_dir, machine, listener).expect("starts");
    node.shutdown().await;
}

#[actix_rt::test]
async fn a_running_node_keeps_its_data_dir_locked_until_it_has_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (listener, config) = one_node(dir.path()).await;
    let node = {
        let data_dir = DataDir::prepare(dir.path(), "raftix", 1).expect("data dir");
        let machine = KvStateMachine::open(data_dir.sm_path(), config.sm_map_size).expect("kv");
        start_node_on(&config, &data_dir, machine, listener).expect("starts")
        // The caller's DataDir is dropped here: the node's own clone of the lock must hold.
    };
    match DataDir::prepare(dir.path(), "raftix", 1) {
        Err(StorageError::DataDirInUse { holder, .. }) => {
            assert_eq!(holder, Some(std::process::id()))
        }
        Err(other) => panic!("expected DataDirInUse, got {other}"),
        Ok(_) => panic!("a second open of a running node's data dir was allowed"),
    }
    node.shutdown().await;
    DataDir::prepare(dir.path(), "raftix", 1).expect("the lock is released once the node stopped");
}
