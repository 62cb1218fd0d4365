//! What a node reports about itself and its cluster: the replies of the node's status and
//! cluster queries (`GetStatus`, `GetCluster` in `crate::messages::node`), which the gateway
//! serves as JSON (`/v1/status`, `/v1/cluster`), the dashboard and the CLI show, and the OpenAPI
//! document describes (hence `ToSchema` here, and on no actor message).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::core::{Index, NodeId, Role, Term};

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
