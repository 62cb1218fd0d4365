//! Starting a node: recover durable state, wire every actor, open the peer port.

use std::sync::Arc;

use actix::{Actor, Arbiter, AsyncContext};
use futures::channel::oneshot;
use futures::FutureExt;
use tokio::net::TcpListener;

use crate::config::NodeConfig;
use crate::core::{RaftCore, RaftLog, Recovered};
use crate::messages::node::{PeerIntroduced, PeerMessage, PeerSnapshotFrame};
use crate::metrics::NodeMetrics;
use crate::state_machine::StateMachine;
use crate::storage::{DataDir, LmdbLog, SnapshotStore, StorageError};
use crate::transport::{serve_peers, Inbound, PeerLinkConfig, PeerListenerConfig};

use super::applier::{Applier, ApplierLinks};
use super::handle::RaftHandle;
use super::log_store::LogStore;
use super::node::{NodeParts, RaftNode};
use super::node_snapshot::{SnapshotPolicy, Snapshots};
use super::recover::recover;
use super::snapshot_receiver::SnapshotReceiver;
use super::timer::{ElectionTimer, TimerConfig};

/// Why a node could not start. Nothing was started when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory or the log could not be opened, or is corrupt (then the message
    /// ends with [`RESTORE_ADVICE`](crate::storage::RESTORE_ADVICE)).
    #[error("{0}{advice}", advice = advice_for(.0))]
    Storage(#[from] StorageError),
    /// The durable state is inconsistent (for example the state machine is ahead of the log).
    #[error("inconsistent data dir {path}: {reason}")]
    Inconsistent {
        /// The data directory.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The peer TLS files cannot be used, or the certificate names another node.
    #[error("peer TLS: {0}")]
    PeerTls(String),
    /// The peer address could not be bound.
    #[error("cannot listen for peers on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What to do about `err`: the restore advice when the node's own data is corrupt.
fn advice_for(err: &StorageError) -> String {
    match err.is_corrupt() {
        true => format!("; {}", crate::storage::RESTORE_ADVICE),
        false => String::new(),
    }
}

/// Starts a node inside the current actix System: binds `config.listen_peer` and calls
/// [`start_node_on`].
pub async fn start_node<S: StateMachine>(
    config: &NodeConfig,
    data_dir: &DataDir,
    machine: S,
) -> Result<RaftHandle, StartError> {
    let listener = TcpListener::bind(&config.listen_peer)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen_peer.clone(),
            source,
        })?;
    start_node_on(config, data_dir, machine, listener)
}

/// Starts a node inside the current actix System with an already bound peer listener.
///
/// Recovers term, vote and log from `data_dir`, checks them against the state machine's applied
/// index, and starts the actors: the node hub and its timer and peer links on the current
/// arbiter, the log store and the applier each on an arbiter (thread) of their own.
pub fn start_node_on<S: StateMachine>(
    config: &NodeConfig,
    data_dir: &DataDir,
    machine: S,
    listener: TcpListener,
) -> Result<RaftHandle, StartError> {
    // Membership is fixed by the first start (see `DataDir::check_voters`): a data dir that
    // records other voters is refused here too, for embedders as for `raftix serve`.
    if let Some(stored) = &data_dir.identity().voters {
        let given: Vec<u64> = config.cluster.keys().copied().collect();
        if *stored != given && !config.force_new_cluster {
            return Err(StorageError::MembershipChanged {
                path: data_dir.path().to_path_buf(),
                stored: stored.clone(),
                given,
            }
            .into());
        }
    }
    let mut machine = machine;
    let snapshots = SnapshotStore::open(data_dir.snapshot_path())?;
    let mut storage = LmdbLog::open(data_dir.log_path(), config.log_map_size)?;
    let core_config = config.core_config();
    let state = recover(
        &mut storage,
        snapshots.latest(),
        &mut machine,
        &core_config.initial,
        &data_dir.path().display().to_string(),
        config.force_new_cluster,
    )?;
    let applied = state.applied;
    tracing::info!(
        node = config.id,
        term = state.loaded.hard_state.term,
        voted_for = ?state.loaded.hard_state.voted_for,
        log_base = state.loaded.base.index,
        last_index = state.loaded.entries.last().map_or(state.loaded.base.index, |e| e.index),
        snapshot = state.snapshot.as_ref().map_or(0, |s| s.last.index),
        applied,
        "recovered durable state"
    );
    let recovered = Recovered {
        hard_state: state.loaded.hard_state,
        log: RaftLog::new(state.loaded.base, state.loaded.entries),
        applied,
        snapshot: state.snapshot,
    };
    let applier_links = |me: &actix::Addr<RaftNode>| ApplierLinks {
        on_created: me.clone().recipient(),
        on_restored: me.clone().recipient(),
        on_disk: me.clone().recipient(),
        snapshot_dir: data_dir.snapshot_path().to_path_buf(),
        applied_id: state.applied_id,
        membership: state.applied_membership.clone(),
    };
    let snapshot_dir = data_dir.snapshot_path().to_path_buf();
    let data_dir_lock = data_dir.lock().clone();
    let policy = SnapshotPolicy {
        every_entries: config.snapshot_entries,
        every_bytes: config.snapshot_bytes,
        keep_entries: config.snapshot_keep,
    };
    let core = RaftCore::new(core_config, recovered);
    let metrics = Arc::new(NodeMetrics::default());
    let (stop_tx, stop_rx) = oneshot::channel();
    let seed: u64 = rand::random();
    tracing::info!(node = config.id, seed, "election timer seed");
    let timer_cfg = TimerConfig {
        election_min: config.election_timeout_min(),
        election_max: config.election_timeout_max(),
        heartbeat: config.heartbeat_interval(),
        seed,
    };
    let log_arbiter = Arbiter::new();
    let apply_arbiter = Arbiter::new();
    let receive_arbiter = Arbiter::new();
    let node_id = config.id;
    let peer_tls = load_peer_tls(config)?;
    let listener_cfg = PeerListenerConfig {
        secret: config.cluster_secret.clone(),
        tls: peer_tls.clone(),
        max_connections: config.max_peer_connections,
        ..PeerListenerConfig::new(node_id, config.cluster_name.clone(), config.max_frame_bytes)
    };
    let link_template = PeerLinkConfig {
        local_id: node_id,
        peer_id: 0,
        peer_addr: String::new(),
        cluster: config.cluster_name.clone(),
        http_addr: config.published_http_addr(),
        local_peer_addr: config.listen_peer.clone(),
        max_frame_bytes: config.max_frame_bytes,
        queue_capacity: config.max_inflight * 4 + 64,
        secret: config.cluster_secret.clone(),
        tls: peer_tls.clone(),
    };
    let http_addr = config.published_http_addr();
    let peer_addrs = config.cluster.clone();
    let election_timeout_max = config.election_timeout_max();
    let lease_duration = config
        .election_timeout_min()
        .saturating_sub(std::time::Duration::from_millis(config.lease_drift_ms));
    let lease_enabled = config.check_quorum && !lease_duration.is_zero();
    let proposal_timeout = config.proposal_timeout();
    let node_metrics = metrics.clone();
    let addr = RaftNode::create(move |ctx| {
        let me = ctx.address();
        let timer = ElectionTimer::new(
            timer_cfg,
            me.clone().recipient(),
            me.clone().recipient(),
            me.clone().recipient(),
        )
        .start();
        let (persisted, failed) = (me.clone().recipient(), me.clone().recipient());
        let disk = me.clone().recipient();
        let store_metrics = node_metrics.clone();
        let log_store = LogStore::start_in_arbiter(&log_arbiter.handle(), move |_| {
            LogStore::new(node_id, storage, persisted, failed, disk, store_metrics)
        });
        let (applied_to, failed) = (me.clone().recipient(), me.clone().recipient());
        let apply_metrics = node_metrics.clone();
        let links_for_applier = applier_links(&me);
        let applier = Applier::start_in_arbiter(&apply_arbiter.handle(), move |_| {
            Applier::new(
                machine,
                applied_to,
                failed,
                apply_metrics,
                links_for_applier,
            )
        });
        let arrived = me.clone().recipient();
        let receiver = SnapshotReceiver::start_in_arbiter(&receive_arbiter.handle(), move |_| {
            SnapshotReceiver::new(node_id, snapshot_dir, arrived)
        });
        let sink_target = me.clone();
        let refused = node_metrics.peer_refused.clone();
        // Messages and snapshot frames are sent (not do_send): the listener waits for the hub
        // to handle them, a bounded number per connection, so a flooding peer cannot grow the
        // hub's mailbox without bound.
        let sink: crate::transport::InboundSink = Arc::new(move |inbound| match inbound {
            Inbound::Hello {
                from,
                http_addr,
                peer_addr,
            } => {
                sink_target.do_send(PeerIntroduced {
                    from,
                    http_addr,
                    peer_addr,
                });
                None
            }
            Inbound::Message(envelope) => {
                Some(sink_target.send(PeerMessage(envelope)).map(|_| ()).boxed())
            }
            Inbound::Snapshot(frame) => Some(
                sink_target
                    .send(PeerSnapshotFrame(frame))
                    .map(|_| ())
                    .boxed(),
            ),
            Inbound::Refused { reason } => {
                refused.with_label_values(&[reason]).inc();
                None
            }
        });
        let listener_task = actix_rt::spawn(async move {
            if let Err(err) = serve_peers(listener, listener_cfg, sink).await {
                tracing::error!(node = node_id, "peer listener stopped: {err}");
            }
        });
        RaftNode::new(NodeParts {
            core,
            timer,
            purge: log_store.clone().recipient(),
            log_store: log_store.recipient(),
            take_snapshot: applier.clone().recipient(),
            restore: applier.clone().recipient(),
            applier: applier.recipient(),
            snapshots: Snapshots {
                store: snapshots,
                receiver,
                received: Default::default(),
                senders: Default::default(),
                taking: false,
                waiters: Vec::new(),
                since_entries: 0,
                since_bytes: 0,
                policy,
            },
            links: Default::default(),
            link_template,
            peer_addrs,
            election_timeout_max,
            lease_duration,
            lease_enabled,
            syncing_lag: config.syncing_lag,
            slow_disk: std::time::Duration::from_millis(config.slow_disk_ms),
            applied,
            http_addr,
            proposal_timeout,
            metrics: node_metrics,
            on_stop: Some(stop_tx),
            arbiters: vec![log_arbiter, apply_arbiter, receive_arbiter],
            data_dir_lock: Some(data_dir_lock),
            listener: Some(listener_task),
        })
    });
    Ok(RaftHandle::new(
        node_id,
        addr,
        metrics,
        stop_rx.map(|r| r.ok().flatten()).boxed().shared(),
    ))
}

/// The peer TLS settings of `config`, if it has them: the files load, and the certificate names
/// this node (a node presenting another node's certificate would be refused by every peer).
fn load_peer_tls(config: &NodeConfig) -> Result<Option<crate::transport::PeerTls>, StartError> {
    let (Some(ca), Some(cert), Some(key)) = (
        &config.peer_tls_ca,
        &config.peer_tls_cert,
        &config.peer_tls_key,
    ) else {
        return Ok(None);
    };
    let files = crate::tls::TlsFiles {
        ca: ca.clone(),
        cert: cert.clone(),
        key: key.clone(),
    };
    let named =
        crate::tls::cert_file_node_id(cert).map_err(|e| StartError::PeerTls(e.to_string()))?;
    if named != config.id {
        return Err(StartError::PeerTls(format!(
            "{} is node {named}'s certificate, but this is node {}",
            cert.display(),
            config.id
        )));
    }
    let server =
        crate::tls::peer_server_config(&files).map_err(|e| StartError::PeerTls(e.to_string()))?;
    let client =
        crate::tls::peer_client_config(&files).map_err(|e| StartError::PeerTls(e.to_string()))?;
    tracing::info!(node = config.id, ca = %ca.display(), "peer connections use mutual TLS");
    Ok(Some(crate::transport::PeerTls { server, client }))
}
