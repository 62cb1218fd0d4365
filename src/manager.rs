//! [`ConsensusManager`]: the embedding facade the specification's consensus-and-replication document calls `ConsensusManager`, in idiomatic
//! Rust. One object runs a node of the replicated key-value service with its gateway (which
//! other regions and clients talk to) and offers:
//!
//! - submitting writes and reading ([`put`](ConsensusManager::put),
//!   [`delete`](ConsensusManager::delete), [`submit`](ConsensusManager::submit),
//!   [`get`](ConsensusManager::get));
//! - apply callbacks ([`ManagerBuilder::on_apply`]): the changes of every applied batch, local or
//!   shipped from another region;
//! - custom conflict resolvers ([`ManagerBuilder::resolver`], used by `custom:NAME` strategies);
//! - region management ([`add_region`](ConsensusManager::add_region),
//!   [`remove_region`](ConsensusManager::remove_region),
//!   [`set_primary_region`](ConsensusManager::set_primary_region),
//!   [`set_conflict_policy`](ConsensusManager::set_conflict_policy),
//!   [`set_replication`](ConsensusManager::set_replication));
//! - replication status and conflict statistics
//!   ([`replication_status`](ConsensusManager::replication_status),
//!   [`conflict_stats`](ConsensusManager::conflict_stats)).
//!
//! It must run inside an actix System (`#[actix::main]`, `actix_rt::System::new().block_on`).
//! Region changes and writes go through this node: on a follower they fail with
//! [`ClientError::NotLeader`] naming the leader (the REST API forwards; this facade does not).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::actors::RaftHandle;
use crate::config::NodeConfig;
use crate::messages::node::ClientError;
use crate::region_shipping::{LinkState, LinkStatus};
use crate::regions::{ConflictPolicy, ConflictStats, MergeResolver};
use crate::server::{Extensions, Running};
use crate::storage::kv_regions::{AckMode, RegionChange, RegionsState};
use crate::storage::{
    AppliedChange, KvCommand, KvOutput, KvReader, KvRequest, KvResponse, StorageError,
};

/// Why a manager call failed.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// The node could not take the command (not the leader, no quorum, timeout, ...).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The state machine refused the command (invalid key, unknown region, ...).
    #[error("refused: {0}")]
    Refused(String),
    /// Reading the local state failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The node could not start.
    #[error("cannot start: {0}")]
    Start(String),
}

/// Sets up a [`ConsensusManager`] before it starts.
pub struct ManagerBuilder {
    config: NodeConfig,
    extensions: Extensions,
}

impl ManagerBuilder {
    /// A manager for the node `config` describes (`config.region` names its region).
    pub fn new(config: NodeConfig) -> Self {
        Self {
            config,
            extensions: Extensions::default(),
        }
    }

    /// Registers the merge of the `custom:NAME` strategy. Every node of every region must
    /// register the same resolvers: conflicts are resolved while applying, identically
    /// everywhere. A resolver must be deterministic, and should be commutative and associative.
    pub fn resolver(mut self, name: &str, resolver: Arc<dyn MergeResolver>) -> Self {
        self.extensions.resolvers.push((name.to_string(), resolver));
        self
    }

    /// Calls `callback` with the changes of every batch the state machine applies (on the
    /// applier's thread: keep it short).
    pub fn on_apply(mut self, callback: impl Fn(&[AppliedChange]) + Send + Sync + 'static) -> Self {
        self.extensions.apply_observer = Some(Arc::new(callback));
        self
    }

    /// Starts the node and its gateway.
    pub async fn start(self) -> Result<ConsensusManager, ManagerError> {
        let running = crate::server::start(self.config, self.extensions)
            .await
            .map_err(|e| ManagerError::Start(e.to_string()))?;
        Ok(ConsensusManager { running })
    }
}

/// The state of replication to one remote region.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionStatus {
    /// The region.
    pub id: String,
    /// Its gateways.
    pub endpoints: Vec<String>,
    /// Whether it is the primary region.
    pub primary: bool,
    /// The highest outbox sequence of this region it acknowledged.
    pub acked: u64,
    /// Mutations of this region it has not acknowledged yet.
    pub lag_entries: u64,
    /// The highest sequence of its outbox applied here.
    pub applied_from: u64,
    /// What this node saw of the link (only the leader ships: default on a follower).
    pub link: LinkState,
}

/// A running node with its gateway; see the module docs.
pub struct ConsensusManager {
    running: Running,
}

impl ConsensusManager {
    /// The node's handle (status, membership, leadership transfer, subscriptions).
    pub fn node(&self) -> &RaftHandle {
        &self.running.node
    }

    /// A reader of the local state machine.
    pub fn reader(&self) -> &KvReader {
        &self.running.kv
    }

    /// Submits a command through this node's log; its output once applied.
    pub async fn submit(&self, command: KvCommand) -> Result<KvOutput, ManagerError> {
        let request = KvRequest {
            request_id: None,
            issued_at_ms: crate::http::auth::now_ms(),
            command,
        };
        let done = self.running.node.submit(request.encode()).await?;
        let response = KvResponse::decode(&done.output)
            .map_err(|e| ManagerError::Refused(format!("undecodable output: {e}")))?;
        match response.output {
            KvOutput::Rejected { reason } => Err(ManagerError::Refused(reason)),
            other => Ok(other),
        }
    }

    /// Sets `key` to `value`.
    pub async fn put(&self, key: &str, value: impl Into<Bytes>) -> Result<(), ManagerError> {
        self.submit(KvCommand::Put {
            key: key.to_string(),
            value: value.into(),
        })
        .await
        .map(|_| ())
    }

    /// Deletes `key`; whether it existed.
    pub async fn delete(&self, key: &str) -> Result<bool, ManagerError> {
        match self
            .submit(KvCommand::Delete {
                key: key.to_string(),
            })
            .await?
        {
            KvOutput::Delete { existed } => Ok(existed),
            _ => Ok(false),
        }
    }

    /// The value of `key` as this node applied it (a stale read; use the node's read barrier
    /// first for a linearizable one).
    pub fn get(&self, key: &str) -> Result<Option<Bytes>, ManagerError> {
        Ok(self.running.kv.get(key)?)
    }

    async fn region_change(&self, change: RegionChange) -> Result<(), ManagerError> {
        self.submit(KvCommand::Region(change)).await.map(|_| ())
    }

    /// Adds (or updates) a remote region reached at `endpoints` (its gateways' base URLs).
    pub async fn add_region(&self, id: &str, endpoints: Vec<String>) -> Result<(), ManagerError> {
        let local = self.running_region()?;
        self.region_change(RegionChange::Add {
            local,
            id: id.to_string(),
            endpoints,
        })
        .await
    }

    /// Removes a remote region.
    pub async fn remove_region(&self, id: &str) -> Result<(), ManagerError> {
        self.region_change(RegionChange::Remove { id: id.to_string() })
            .await
    }

    /// Sets (or clears) the primary region.
    pub async fn set_primary_region(&self, id: Option<&str>) -> Result<(), ManagerError> {
        self.region_change(RegionChange::SetPrimary {
            id: id.map(str::to_string),
        })
        .await
    }

    /// Replaces the conflict policy (strategies by key prefix).
    pub async fn set_conflict_policy(&self, policy: ConflictPolicy) -> Result<(), ManagerError> {
        self.region_change(RegionChange::SetPolicy(policy)).await
    }

    /// Sets how writes made through the REST API wait for other regions.
    pub async fn set_replication(
        &self,
        mode: AckMode,
        timeout_ms: u64,
    ) -> Result<(), ManagerError> {
        self.region_change(RegionChange::SetAck { mode, timeout_ms })
            .await
    }

    fn running_region(&self) -> Result<String, ManagerError> {
        self.running
            .config_region()
            .ok_or_else(|| ManagerError::Refused("this node has no region (config.region)".into()))
    }

    /// The replicated region state (registry, settings, acknowledgements, statistics).
    pub fn regions(&self) -> Result<RegionsState, ManagerError> {
        Ok(self.running.kv.regions_state()?)
    }

    /// The replication status of every remote region.
    pub fn replication_status(&self) -> Result<Vec<RegionStatus>, ManagerError> {
        let state = self.regions()?;
        let links: BTreeMap<String, LinkState> = self.running.links.snapshot();
        let last = state.last_seq();
        Ok(state
            .remotes
            .values()
            .map(|r| RegionStatus {
                id: r.id.clone(),
                endpoints: r.endpoints.clone(),
                primary: state.primary.as_ref() == Some(&r.id),
                acked: r.acked,
                lag_entries: last.saturating_sub(r.acked),
                applied_from: r.applied,
                link: links.get(&r.id).cloned().unwrap_or_default(),
            })
            .collect())
    }

    /// The conflicts resolved in this region, and the keys holding unresolved siblings.
    pub fn conflict_stats(&self) -> Result<(ConflictStats, u64), ManagerError> {
        let state = self.regions()?;
        Ok((state.stats, state.unresolved))
    }

    /// What the shipper of this node saw of each link.
    pub fn links(&self) -> Arc<LinkStatus> {
        self.running.links.clone()
    }

    /// Stops the gateway and the node (a leader hands leadership over first).
    pub async fn stop(self) {
        self.running.stop(true).await;
    }
}
