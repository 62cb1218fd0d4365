//! `RaftHandle`: what an embedding application holds to talk to its node.

use std::collections::BTreeSet;
use std::sync::Arc;

use actix::{Addr, Recipient};
use bytes::Bytes;
use futures::future::{BoxFuture, Shared};

use crate::core::NodeId;
use crate::messages::node::{
    Ack, BlockPeers, ClientError, ClientWrite, GetStatus, NodeStatus, ReadMode, RoleChange,
    Shutdown, SubscribeRoles, WriteResult,
};
use crate::metrics::NodeMetrics;

/// A cheap, cloneable handle on a running node.
#[derive(Clone)]
pub struct RaftHandle {
    id: NodeId,
    addr: Addr<super::node::RaftNode>,
    metrics: Arc<NodeMetrics>,
    stopped: Shared<BoxFuture<'static, Option<String>>>,
}

impl RaftHandle {
    pub(super) fn new(
        id: NodeId,
        addr: Addr<super::node::RaftNode>,
        metrics: Arc<NodeMetrics>,
        stopped: Shared<BoxFuture<'static, Option<String>>>,
    ) -> Self {
        Self {
            id,
            addr,
            metrics,
            stopped,
        }
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The node actor's address, for applications that message it directly.
    pub fn addr(&self) -> &Addr<super::node::RaftNode> {
        &self.addr
    }

    /// The node's counters.
    pub fn metrics(&self) -> &Arc<NodeMetrics> {
        &self.metrics
    }

    /// Replicates `command` and returns the state machine's output once the command is
    /// committed and applied on this node. On a follower returns `ClientError::NotLeader` naming
    /// the leader (with its HTTP address when known).
    pub async fn submit(&self, command: Bytes) -> Result<WriteResult, ClientError> {
        self.submit_with(command, Ack::Quorum).await
    }

    /// Like [`submit`](Self::submit), answering at the given acknowledgement level: `Quorum`
    /// (committed and applied here), `All` (applied on every voter, else `NotEverywhere`) or
    /// `Leader` (durable on the leader only; the output is empty and the write may be lost on
    /// failover).
    pub async fn submit_with(&self, command: Bytes, ack: Ack) -> Result<WriteResult, ClientError> {
        self.addr
            .send(ClientWrite { command, ack })
            .await
            .map_err(|e| ClientError::Unavailable(e.to_string()))?
    }

    /// A linearizable read barrier (ReadIndex): on the leader, returns once the local state
    /// machine reflects every write acknowledged before the call, with the applied index it
    /// reached. On a follower returns `ClientError::NotLeader`.
    pub async fn read_barrier(&self) -> Result<crate::core::Index, ClientError> {
        self.read_barrier_with(ReadMode::Linearizable).await
    }

    /// A read barrier of the given mode: `Linearizable` (ReadIndex; on a follower the leader is
    /// asked and the follower waits for its own state machine), `Lease` (served at once by a
    /// leader holding its lease) or `All` (leader only: every voter applied the read index).
    pub async fn read_barrier_with(
        &self,
        mode: ReadMode,
    ) -> Result<crate::core::Index, ClientError> {
        self.addr
            .send(crate::messages::node::ClientRead { mode })
            .await
            .map_err(|e| ClientError::Unavailable(e.to_string()))?
    }

    /// Hands leadership to `to` (or the most up-to-date other voter) and returns the new
    /// leader once it took office. On a follower returns `ClientError::NotLeader`.
    pub async fn transfer_leader(&self, to: Option<NodeId>) -> Result<NodeId, ClientError> {
        self.addr
            .send(crate::messages::node::TransferLeader { to })
            .await
            .map_err(|e| ClientError::Unavailable(e.to_string()))?
    }

    /// Changes the membership by one server (add a learner, promote, demote, remove); answers
    /// once the new configuration is committed and applied here. Leader only: elsewhere
    /// `ClientError::NotLeader`. Another change in progress is `ClientError::Unavailable`
    /// (retry), a learner not caught up or the last voter is `ClientError::Conflict`, an unknown
    /// node `ClientError::NotFound`.
    pub async fn change_membership(
        &self,
        change: crate::core::ConfigChange,
    ) -> Result<crate::messages::node::ChangeResult, ClientError> {
        self.addr
            .send(crate::messages::node::ChangeMembership(change))
            .await
            .map_err(|e| ClientError::Unavailable(e.to_string()))?
    }

    /// Takes a snapshot now (or waits for the one being taken) and compacts the log after it.
    pub async fn snapshot(
        &self,
    ) -> Result<crate::messages::snapshot::SnapshotSummary, ClientError> {
        self.addr
            .send(crate::messages::snapshot::SnapshotNow)
            .await
            .map_err(|e| ClientError::Unavailable(e.to_string()))?
    }

    /// The node's current status.
    pub async fn status(&self) -> Result<NodeStatus, ClientError> {
        self.addr
            .send(GetStatus)
            .await
            .map_err(|e| ClientError::Unavailable(e.to_string()))
    }

    /// Delivers the current role now and every role change from then on to `recipient`.
    pub fn subscribe_roles(&self, recipient: Recipient<RoleChange>) {
        self.addr.do_send(SubscribeRoles(recipient));
    }

    /// Fault injection for tests: drop all traffic to and from `peers` (empty heals).
    pub async fn block_peers(&self, peers: BTreeSet<NodeId>) {
        let _ = self.addr.send(BlockPeers(peers)).await;
    }

    /// Stops the node as failed, with `reason` (what [`stopped`](Self::stopped) resolves to):
    /// for a reader of the state machine that found its stored data damaged, so the node stops
    /// rather than go on serving it.
    pub fn fail(&self, reason: String) {
        self.addr
            .do_send(crate::messages::node::StorageFailed { reason });
    }

    /// Stops the node and waits until it stopped.
    pub async fn shutdown(&self) {
        self.addr.do_send(Shutdown);
        self.stopped.clone().await;
    }

    /// Resolves when the node stops: `Some(reason)` if it failed (for example on a storage
    /// error), `None` on a clean shutdown.
    pub async fn stopped(&self) -> Option<String> {
        self.stopped.clone().await
    }
}
