//! Messages to the `RaftNode` actor: timer and I/O reports, peer traffic, and client requests.

use actix::{Message, Recipient};
use bytes::Bytes;
use serde::Serialize;

use crate::core::{Envelope, Index, LogId, NodeId, Role, Term};
pub use crate::views::{ClusterView, Health, HealthState, MemberView, NodeStatus, PeerProgress};

/// Timer -> node: the election timer armed with `epoch` fired.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct ElectionTimedOut {
    /// Epoch of the arming that fired.
    pub epoch: u64,
}

/// Timer -> node: the minimum election timeout passed since the arming with `epoch`.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct LeaseExpired {
    /// Epoch of the arming.
    pub epoch: u64,
}

/// Timer -> node: the heartbeat interval elapsed (leader only).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct HeartbeatTick;

/// Log store -> node: every `Persist` up to `io_seq` is durable.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Persisted {
    /// Latest durable write.
    pub io_seq: u64,
    /// How long the durable write (transaction and fsync) took.
    pub took: std::time::Duration,
}

/// Applier -> node: entries were applied; `outputs` holds each entry's id and result.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Applied {
    /// Applied entries with their state machine outputs, in log order.
    pub outputs: Vec<(LogId, Bytes)>,
}

/// Log store or applier -> node: storage failed; the node must stop.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct StorageFailed {
    /// What failed, for the operator.
    pub reason: String,
}

/// Log store or applier -> node: the disk refuses writes for now (`refusal` says why), or
/// accepts them again (`None`). The store keeps what it could not write and retries it.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct DiskRefusal {
    /// `log` or `state machine`.
    pub store: &'static str,
    /// Why writes fail; `None` once they succeed again.
    pub refusal: Option<String>,
}

/// Transport -> node: a message from a peer.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct PeerMessage(pub Envelope);

/// Transport -> node: a snapshot transfer frame from a peer.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct PeerSnapshotFrame(pub crate::transport::SnapshotFrame);

/// Transport -> node: a peer introduced itself with the HTTP address clients should use.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct PeerIntroduced {
    /// The peer.
    pub from: NodeId,
    /// Its advertised HTTP address (`host:port`).
    pub http_addr: String,
    /// Its own peer address, as it announced it.
    pub peer_addr: String,
}

/// Why a client request could not be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum ClientError {
    /// This node is not the leader; retry on the leader if one is known.
    #[error("{}", not_leader_text(*leader_id, leader_addr.as_deref(), *reach))]
    NotLeader {
        /// The leader this node knows of.
        leader_id: Option<NodeId>,
        /// Its HTTP address, when known.
        leader_addr: Option<String>,
        /// With no leader known: how many voters this node reaches, when it knows.
        #[serde(skip_serializing_if = "Option::is_none")]
        reach: Option<Reach>,
    },
    /// The entry was overwritten by a new leader before it committed: it was NOT applied and
    /// may be retried.
    #[error("proposal dropped by a leader change; it was not applied")]
    ProposalDropped,
    /// No answer in time: the command may or may not be applied later.
    #[error("timed out waiting for commit; the outcome is unknown")]
    OutcomeUnknown,
    /// The node is shutting down or failed.
    #[error("node unavailable: {0}")]
    Unavailable(String),
    /// The request cannot be carried out as asked (for example an unknown transfer target).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The request conflicts with the cluster's state (a membership change in progress, a
    /// learner not caught up): retry later or change the request.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The node named is not a member.
    #[error("not found: {0}")]
    NotFound(String),
    /// This node's disk refuses writes (full, read-only): the write was refused before it was
    /// proposed, so it was NOT applied.
    #[error("{0}")]
    DiskRefused(String),
    /// `ack=all`: the write IS committed (and applied on the leader) but not every voter applied
    /// it in time.
    #[error("committed at index {index} (term {term}) but not yet applied on every voter")]
    NotEverywhere {
        /// Where the write sits in the log.
        index: Index,
        /// Its term.
        term: Term,
    },
}

/// How many voters a node without a leader is in contact with (itself included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reach {
    /// Voters heard from within an election timeout, this node included when it votes.
    pub reachable: usize,
    /// Voters in the configuration.
    pub voters: usize,
}

/// The sentence a person reads for [`ClientError::NotLeader`].
fn not_leader_text(leader: Option<NodeId>, addr: Option<&str>, reach: Option<Reach>) -> String {
    match (leader, addr, reach) {
        (Some(id), Some(addr), _) => {
            format!("this node is not the leader: node {id} is, at {addr}")
        }
        (Some(id), None, _) => format!(
            "this node is not the leader: node {id} is, but its address is not known here yet"
        ),
        (None, _, Some(Reach { reachable, voters })) => {
            let quorum = voters / 2 + 1;
            let tail = if reachable >= quorum {
                "; an election is under way"
            } else {
                "; no leader can be elected until more of them are back"
            };
            format!(
                "no leader: {reachable} of {voters} nodes reachable, a quorum needs {quorum}{tail}"
            )
        }
        (None, _, None) => "no leader is known yet: an election may be under way".to_string(),
    }
}

impl ClientError {
    /// [`ClientError::NotLeader`] naming `leader` (at `addr`), without reachability.
    pub fn not_leader(leader: Option<NodeId>, addr: Option<String>) -> Self {
        ClientError::NotLeader {
            leader_id: leader,
            leader_addr: addr,
            reach: None,
        }
    }
}

/// When a write is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ack {
    /// Once committed (stored on a quorum) and applied on the leader.
    #[default]
    Quorum,
    /// Once committed and applied on every voter (or `NotEverywhere` after the timeout).
    All,
    /// Once durable on the leader's disk, before it is committed: may be lost on failover.
    Leader,
}

/// Client -> node: replicate a command and answer once it is committed and applied here.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<WriteResult, ClientError>")]
pub struct ClientWrite {
    /// The command for the state machine.
    pub command: Bytes,
    /// When to answer.
    pub ack: Ack,
}

/// A command that was committed and applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteResult {
    /// Where the command sits in the log.
    pub log_id: LogId,
    /// What the state machine returned for it.
    pub output: Bytes,
}

/// Client -> node: report the node's status.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "NodeStatus")]
pub struct GetStatus;

/// A role change, as delivered to subscribers.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct RoleChange {
    /// This node.
    pub node: NodeId,
    /// The new role.
    pub role: Role,
    /// The term.
    pub term: Term,
    /// The known leader.
    pub leader: Option<NodeId>,
}

/// Client -> node: deliver every future `RoleChange` to this recipient.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeRoles(pub Recipient<RoleChange>);

/// Test/fault-injection -> node: drop all traffic to and from these peers (an in-process
/// network partition). An empty set heals.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct BlockPeers(pub std::collections::BTreeSet<NodeId>);

/// Anyone -> node: stop the node and its actors.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Client -> node: entries of the in-memory log from `from`, at most `limit` of them.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "LogSlice")]
pub struct GetLog {
    /// First index wanted (clamped to the first index held).
    pub from: Index,
    /// Most entries returned.
    pub limit: usize,
}

/// A slice of a node's log.
#[derive(Debug, Clone)]
pub struct LogSlice {
    /// First index the node holds.
    pub first_index: Index,
    /// Last index the node holds.
    pub last_index: Index,
    /// The node's commit index.
    pub commit: Index,
    /// The entries asked for.
    pub entries: Vec<crate::core::Entry>,
}

/// Client -> node: the members as this node sees them.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "ClusterView")]
pub struct GetCluster;

/// Client -> node: a linearizable read barrier (ReadIndex). Answers, on the leader, the applied
/// index at which the local state machine reflects every write acknowledged before the request.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<Index, ClientError>")]
pub struct ClientRead {
    /// How the read is made safe.
    pub mode: ReadMode,
}

/// How a linearizable read is made safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// ReadIndex: a heartbeat round confirms leadership (on a follower: the leader is asked).
    #[default]
    Linearizable,
    /// The leader's lease, when it holds one (else as `Linearizable`). Relies on bounded clock
    /// drift between nodes.
    Lease,
    /// As `Linearizable`, and every voter has applied the read index (leader only).
    All,
}

/// Client -> node: hand leadership to `to` (or the most up-to-date other voter) and answer the
/// new leader once it took office (dissertation §3.10). Writes are refused during the transfer.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<NodeId, ClientError>")]
pub struct TransferLeader {
    /// The target, or `None` for the most up-to-date voter.
    pub to: Option<NodeId>,
}

/// Client -> leader: change the membership by one server (see `crate::core::ConfigChange`).
/// Answers once the new configuration is committed and applied on this node.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ChangeResult, ClientError>")]
pub struct ChangeMembership(pub crate::core::ConfigChange);

/// The outcome of a membership change.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeResult {
    /// Index of the configuration entry (the commit index when nothing changed).
    pub index: Index,
    /// Whether a new configuration was appended (false: it already was as asked).
    pub changed: bool,
    /// The configuration now in force.
    pub membership: crate::core::Membership,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_leader_answers_are_sentences() {
        let text = |leader, addr: Option<&str>, reach| {
            ClientError::NotLeader {
                leader_id: leader,
                leader_addr: addr.map(str::to_string),
                reach,
            }
            .to_string()
        };
        assert_eq!(
            text(Some(2), Some("http://10.0.0.2:8080"), None),
            "this node is not the leader: node 2 is, at http://10.0.0.2:8080"
        );
        assert_eq!(
            text(Some(2), None, None),
            "this node is not the leader: node 2 is, but its address is not known here yet"
        );
        let reach = |reachable, voters| Some(Reach { reachable, voters });
        assert_eq!(
            text(None, None, reach(1, 3)),
            "no leader: 1 of 3 nodes reachable, a quorum needs 2; no leader can be elected \
             until more of them are back"
        );
        assert_eq!(
            text(None, None, reach(3, 5)),
            "no leader: 3 of 5 nodes reachable, a quorum needs 3; an election is under way"
        );
        assert_eq!(
            text(None, None, None),
            "no leader is known yet: an election may be under way"
        );
        for t in [text(None, None, None), text(Some(1), None, reach(1, 1))] {
            assert!(!t.contains("None") && !t.contains("Some("), "{t}");
        }
    }
}
