//! Messages to the `RaftNode` actor: timer and I/O reports, peer traffic, and client requests.

use std::collections::BTreeMap;

use actix::{Message, Recipient};
use bytes::Bytes;
use serde::Serialize;

use crate::core::{Envelope, Index, LogId, NodeId, Role, Term};

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

/// A node's health, with the reason when it is not `ACTIVE`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Health {
    /// `ACTIVE`, `SYNCING` (behind the leader's commit, catching up) or `DEGRADED` (a leader
    /// without quorum contact, a slow disk, or no reachable leader).
    pub state: HealthState,
    /// Why the state is not `ACTIVE`.
    pub reason: Option<String>,
}

/// The three health states the specification's index-manager document names.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthState {
    /// Serving normally.
    Active,
    /// Catching up with the leader.
    Syncing,
    /// Impaired; see the reason.
    Degraded,
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
    #[error("not the leader (leader: {leader_id:?} at {leader_addr:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader_id: Option<NodeId>,
        /// Its HTTP address, when known.
        leader_addr: Option<String>,
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

/// A follower's replication state as seen by the leader.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq, Eq)]
pub struct PeerProgress {
    /// Highest index known stored on the follower.
    pub match_index: Index,
    /// Next index the leader will send.
    pub next_index: Index,
    /// Entries the follower is behind the leader's last index.
    pub lag: u64,
}

/// A snapshot of a node's state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq, Eq)]
pub struct NodeStatus {
    /// This node.
    pub id: NodeId,
    /// Current role: `LEADER`, `FOLLOWER`, `PRE_CANDIDATE` or `CANDIDATE`.
    #[schema(value_type = String)]
    pub role: Role,
    /// Current term.
    pub term: Term,
    /// Known leader.
    pub leader: Option<NodeId>,
    /// Known leader's HTTP address.
    pub leader_addr: Option<String>,
    /// Commit index.
    pub commit: Index,
    /// The leader's commit index as this node last heard it (its own commit on the leader).
    pub leader_commit: Index,
    /// Last index applied by the state machine.
    pub applied: Index,
    /// Entries this node's state machine is behind the leader's commit it last heard.
    pub lag: u64,
    /// ACTIVE / SYNCING / DEGRADED with the reason.
    pub health: Health,
    /// Last log index.
    pub last_log_index: Index,
    /// Term of the last log entry.
    pub last_log_term: Term,
    /// Voting members.
    pub members: Vec<NodeId>,
    /// Non-voting members (learners).
    pub learners: Vec<NodeId>,
    /// Per-follower progress, when leader (JSON object keys are strings: the node ids).
    #[schema(value_type = BTreeMap<String, PeerProgress>)]
    pub peers: BTreeMap<NodeId, PeerProgress>,
}

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

/// One member of the cluster as seen by the answering node.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct MemberView {
    /// The member.
    pub id: NodeId,
    /// Its peer address (`host:port`).
    pub peer_addr: String,
    /// `voter` or `learner` (learners receive the log but never vote or count for quorum).
    #[schema(value_type = String)]
    pub suffrage: &'static str,
    /// Its HTTP address, once known.
    pub http_addr: Option<String>,
    /// Whether this is the answering node.
    pub is_self: bool,
    /// Whether it is the leader the answering node knows.
    pub is_leader: bool,
    /// `ok`, `unreachable` or `unknown`, from the answering node's point of view.
    #[schema(value_type = String)]
    pub health: &'static str,
    /// The member's health state: its own for the answering node; on a leader, for followers,
    /// SYNCING when further behind than the syncing threshold and DEGRADED when unreachable;
    /// null when unknown.
    pub state: Option<HealthState>,
    /// Whether the answering node's link to it is connected (not for itself).
    pub connected: Option<bool>,
    /// Highest index known stored there (leader only).
    pub match_index: Option<Index>,
    /// Entries behind the leader's last index (leader only).
    pub lag: Option<u64>,
    /// Milliseconds since it last acknowledged an append (leader only).
    pub last_ack_ms_ago: Option<u64>,
    /// Round-trip time of its latest acknowledged append, milliseconds (leader only).
    pub rtt_ms: Option<f64>,
}

/// The cluster as seen by one node.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct ClusterView {
    /// The answering node.
    pub id: NodeId,
    /// Its term.
    pub term: Term,
    /// The leader it knows.
    pub leader: Option<NodeId>,
    /// Every member, voters first.
    pub members: Vec<MemberView>,
}

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
