//! What goes into the core (`Event`) and what comes out of it (`Action`).
//!
//! The core never performs an action itself: the runtime carries them out and feeds completions
//! back as events. Must not import actix, heed or tokio.

use super::types::{
    Entry, Envelope, HardState, Index, LogId, Membership, NodeId, Role, SnapshotMeta, Term,
};

/// An input to `RaftCore::step`.
#[derive(Clone, Debug)]
pub enum Event {
    /// The election timer armed with `epoch` fired. Stale epochs are ignored.
    ElectionTimeout {
        /// Epoch of the `ArmElection` this timeout belongs to.
        epoch: u64,
    },
    /// The minimum election timeout elapsed since the election timer armed with `epoch`: the
    /// leader this follower knew has been silent that long, so its lease is over and vote
    /// requests are considered again. Stale epochs are ignored.
    LeaseExpired {
        /// Epoch of the `ArmElection` this belongs to.
        epoch: u64,
    },
    /// The leader's heartbeat interval elapsed.
    HeartbeatTick,
    /// A message from a peer.
    Receive(Envelope),
    /// The state machine has applied every entry up to `index` (reported to the leader).
    Applied {
        /// Highest applied index.
        index: Index,
    },
    /// Every `Persist` with an `io_seq` up to and including this one is durable.
    Persisted {
        /// Sequence number of the latest completed `Persist`.
        io_seq: u64,
    },
    /// A snapshot streamed by `from` (a leader in `term`) arrived whole and verified; the
    /// runtime holds it, ready to install (the InstallSnapshot RPC of §7, whose chunks never
    /// pass through the core).
    SnapshotReceived {
        /// The leader that sent it.
        from: NodeId,
        /// The leader's term.
        term: Term,
        /// What the snapshot covers.
        meta: SnapshotMeta,
    },
    /// A `SendSnapshot` to `to` ended: `last` is the snapshot the follower received and
    /// installed (or already had), `None` if the transfer failed.
    SnapshotSent {
        /// The follower.
        to: NodeId,
        /// The snapshot delivered.
        last: Option<LogId>,
    },
}

/// An effect the runtime must carry out, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Make this durable (fsync) and then report `Event::Persisted { io_seq }`. Persists must
    /// complete in `io_seq` order. `truncate_from` is applied before `entries` are written.
    Persist {
        /// Sequence number, increasing by one per persist.
        io_seq: u64,
        /// New term and vote, if they changed.
        hard_state: Option<HardState>,
        /// A snapshot from the leader replaces the log: delete every entry and make `last` the
        /// log's base (before the truncation and the entries below). The runtime already holds
        /// the snapshot durably.
        install: Option<SnapshotMeta>,
        /// Delete every entry at or after this index first.
        truncate_from: Option<Index>,
        /// Entries to append.
        entries: Vec<Entry>,
    },
    /// Send a message to a peer; it may be lost, delayed or reordered.
    Send(Envelope),
    /// Replace the state machine's state with the installed snapshot `meta` before applying
    /// anything after it (the `Persist` that installed it is durable).
    Restore {
        /// The snapshot.
        meta: SnapshotMeta,
    },
    /// Stream the latest snapshot to `to` (its log is behind this leader's compacted log), then
    /// report `Event::SnapshotSent`.
    SendSnapshot {
        /// The follower.
        to: NodeId,
    },
    /// The configuration in force on this node changed (reported at start too).
    MembershipChanged {
        /// The configuration now in force.
        membership: Membership,
    },
    /// Apply these committed entries, in order, to the state machine.
    Apply {
        /// Committed entries, contiguous and following the previous `Apply`.
        entries: Vec<Entry>,
    },
    /// (Re)start the election timer: report `LeaseExpired { epoch }` after the minimum election
    /// timeout and `ElectionTimeout { epoch }` after a random one (at least the minimum).
    ArmElection {
        /// Identifies this arming; earlier ones are now stale.
        epoch: u64,
    },
    /// A linearizable read may be served once the state machine has applied `index`: this
    /// leader's leadership was confirmed by a quorum after the read was requested (ReadIndex).
    ReadReady {
        /// The read's id, as given to `read_index`.
        id: u64,
        /// The commit index when the read was requested.
        index: Index,
    },
    /// A quorum acknowledged read round `round` (every heartbeat tick starts one): this node
    /// led when the round began. The runtime derives the leader lease from it.
    QuorumConfirmed {
        /// The round.
        round: u64,
    },
    /// These reads cannot be served here: leadership was lost before they were confirmed.
    ReadsFailed {
        /// Ids of the reads.
        ids: Vec<u64>,
    },
    /// The node's role, term or known leader changed.
    RoleChanged {
        /// The new role.
        role: Role,
        /// The current term.
        term: Term,
        /// The leader known in this term, if any.
        leader: Option<NodeId>,
    },
}
