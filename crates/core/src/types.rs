//! Plain data types of the Raft protocol: log entries, hard state and peer messages.
//!
//! These types are shared by the pure core, the storage layer and the peer transport (they are the
//! wire and disk format, encoded with bincode 2). This module must not import actix, heed or tokio.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Identifier of a node in the cluster (non-zero).
pub type NodeId = u64;
/// A Raft term (§5.1). Term 0 is the term before any election.
pub type Term = u64;
/// A log index. Index 0 is the empty prefix; the first real entry has index 1.
pub type Index = u64;

/// The position of an entry: its term and index.
///
/// The derived order compares the term first, then the index, which is exactly the "at least as
/// up-to-date" comparison of §5.4.1.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct LogId {
    /// Term in which the entry was created.
    pub term: Term,
    /// Position in the log.
    pub index: Index,
}

impl LogId {
    /// Builds a log id.
    pub fn new(term: Term, index: Index) -> Self {
        Self { term, index }
    }
}

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryPayload {
    /// The empty entry a new leader appends in its term before anything else (§5.4.2, §8).
    Noop,
    /// An opaque command for the state machine.
    Command(Bytes),
    /// A new cluster configuration (dissertation §4.1: it takes effect on every node as soon as
    /// the node appends it, committed or not). Single-server changes only: it differs from the
    /// configuration before it by at most one voter.
    Config(Membership),
}

/// The members of the cluster: voters elect leaders and count for quorums; learners receive the
/// log but never vote and never count. A node is in at most one of the two sets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// Members that vote and count for every quorum.
    pub voters: BTreeSet<NodeId>,
    /// Members that only receive the log.
    pub learners: BTreeSet<NodeId>,
    /// Peer (Raft) address of each member.
    pub addrs: BTreeMap<NodeId, String>,
    /// Nodes removed from the cluster and not added back since. Once this node knows the
    /// configuration that removed one is committed, it refuses every message from it (as etcd's
    /// transport refuses removed members), so a removed node, or a stale process that kept its
    /// data dir and credentials, cannot disturb the cluster.
    pub removed: BTreeSet<NodeId>,
}

impl Membership {
    /// Voters only, without addresses (for tests and simulations).
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Self {
            voters: voters.into_iter().collect(),
            ..Self::default()
        }
    }

    /// Whether `id` is a voter or a learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.learners.contains(&id)
    }

    /// Every member, voters first.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.iter().chain(self.learners.iter()).copied()
    }

    /// Votes needed for a majority of the voters.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }
}

/// What a snapshot stands for: the state after applying every entry up to `last`, in a cluster
/// whose configuration (as of `last`) is `membership`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The last entry the snapshot covers.
    pub last: LogId,
    /// The configuration in force at `last`.
    pub membership: Membership,
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Term of the leader that created the entry.
    pub term: Term,
    /// Position of the entry in the log.
    pub index: Index,
    /// What the entry carries.
    pub payload: EntryPayload,
}

impl Entry {
    /// The entry's position.
    pub fn log_id(&self) -> LogId {
        LogId::new(self.term, self.index)
    }

    /// Approximate encoded size, used to bound message batches.
    pub fn approx_size(&self) -> usize {
        24 + match &self.payload {
            EntryPayload::Noop => 0,
            EntryPayload::Command(bytes) => bytes.len(),
            EntryPayload::Config(m) => {
                16 * (m.voters.len() + m.learners.len()) + 32 * m.addrs.len()
            }
        }
    }
}

/// State that must be on stable storage before the node answers any RPC (Figure 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// Latest term this node has seen.
    pub term: Term,
    /// Candidate that received this node's vote in `term`, if any.
    pub voted_for: Option<NodeId>,
}

/// Outcome of an AppendEntries request, as reported by the follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// The follower's log matches the leader's up to and including `match_index`.
    Success {
        /// Last index known to match the leader's log.
        match_index: Index,
    },
    /// The consistency check failed at `rejected_prev`; `hint` is the follower's last entry at or
    /// before that index whose term is not greater than the leader's `prev` term, so the leader can
    /// skip a whole term per round trip (fast back-off).
    Conflict {
        /// The `prev.index` of the rejected request.
        rejected_prev: Index,
        /// Where the follower suggests the leader probe next.
        hint: LogId,
    },
}

/// A message between two Raft nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// RequestVote (§5.2), or a pre-vote when `pre_vote` is set (dissertation §9.6): a pre-vote
    /// carries the term the candidate would use and changes nothing on the receiver.
    VoteRequest {
        /// The candidate's (prospective, for a pre-vote) term.
        term: Term,
        /// The candidate's last log entry.
        last_log: LogId,
        /// Whether this is a pre-vote.
        pre_vote: bool,
        /// The campaign follows a leadership transfer (`TimeoutNow`): voters hearing from the
        /// old leader consider it anyway (dissertation §3.10).
        transfer: bool,
    },
    /// Leader -> transfer target: start an election now, skipping pre-vote (§3.10).
    TimeoutNow {
        /// The leader's term.
        term: Term,
    },
    /// Answer to a `VoteRequest`.
    VoteResponse {
        /// The voter's term, or for a granted pre-vote the term that was asked for.
        term: Term,
        /// Whether the vote is granted.
        granted: bool,
        /// Whether this answers a pre-vote.
        pre_vote: bool,
    },
    /// AppendEntries (§5.3).
    AppendRequest {
        /// The leader's term.
        term: Term,
        /// The entry immediately before `entries`.
        prev: LogId,
        /// Entries to store (may be empty to carry the commit index only).
        entries: Vec<Entry>,
        /// The leader's commit index.
        commit: Index,
    },
    /// Answer to an `AppendRequest`.
    AppendResponse {
        /// The follower's term.
        term: Term,
        /// Whether the log matched.
        outcome: AppendOutcome,
    },
    /// Leader liveness and commit propagation, never queued behind entries.
    Heartbeat {
        /// The leader's term.
        term: Term,
        /// The leader's commit index, capped at what the follower is known to hold.
        commit: Index,
        /// The leader's latest read round (ReadIndex, dissertation §6.4), echoed in the answer:
        /// an answer carrying round `r` proves the leader still led when round `r` began.
        ctx: u64,
        /// The leader's own commit index (uncapped), so the follower knows how far behind it is.
        leader_commit: Index,
    },
    /// Answer to a `Heartbeat`.
    HeartbeatResponse {
        /// The follower's term.
        term: Term,
        /// The `ctx` of the heartbeat answered (0 when answering anything else).
        ctx: u64,
        /// The highest index the follower's state machine has applied.
        applied: Index,
    },
    /// Follower -> leader: linearizable reads served by the follower need a read index
    /// (dissertation §6.4: the leader confirms its leadership, then answers its commit index).
    ReadIndexRequest {
        /// The follower's term.
        term: Term,
        /// The follower's ids for these reads.
        ids: Vec<u64>,
    },
    /// Leader -> follower: the read index for `ids`, or `None` when the leader could not confirm
    /// its leadership (the reads fail).
    ReadIndexResponse {
        /// The leader's term.
        term: Term,
        /// The follower's read ids.
        ids: Vec<u64>,
        /// The index the follower must have applied before serving the reads.
        index: Option<Index>,
    },
}

impl Message {
    /// The term the message carries.
    pub fn term(&self) -> Term {
        match self {
            Message::VoteRequest { term, .. }
            | Message::VoteResponse { term, .. }
            | Message::AppendRequest { term, .. }
            | Message::AppendResponse { term, .. }
            | Message::Heartbeat { term, .. }
            | Message::HeartbeatResponse { term, .. }
            | Message::ReadIndexRequest { term, .. }
            | Message::TimeoutNow { term }
            | Message::ReadIndexResponse { term, .. } => *term,
        }
    }

    /// Short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::VoteRequest { pre_vote: true, .. } => "pre_vote_request",
            Message::VoteRequest { .. } => "vote_request",
            Message::VoteResponse { pre_vote: true, .. } => "pre_vote_response",
            Message::VoteResponse { .. } => "vote_response",
            Message::AppendRequest { .. } => "append_request",
            Message::AppendResponse { .. } => "append_response",
            Message::Heartbeat { .. } => "heartbeat",
            Message::HeartbeatResponse { .. } => "heartbeat_response",
            Message::ReadIndexRequest { .. } => "read_index_request",
            Message::TimeoutNow { .. } => "timeout_now",
            Message::ReadIndexResponse { .. } => "read_index_response",
        }
    }
}

/// A message with its sender and receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Sending node.
    pub from: NodeId,
    /// Receiving node.
    pub to: NodeId,
    /// The message.
    pub msg: Message,
}

/// The role a node plays (§5.1), plus the pre-candidate step of pre-vote. Serialized upper-case
/// (`LEADER`, `FOLLOWER`, ...) as the API and dashboard show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// Follows a leader, or waits for one.
    Follower,
    /// Asks for pre-votes before disturbing the cluster with a new term.
    PreCandidate,
    /// Asks for votes in a new term.
    Candidate,
    /// Accepts proposals and replicates the log.
    Leader,
}

impl Role {
    /// Upper-case name as shown in the API and dashboard.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Follower => "FOLLOWER",
            Role::PreCandidate => "PRE_CANDIDATE",
            Role::Candidate => "CANDIDATE",
            Role::Leader => "LEADER",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        })
    }
}
