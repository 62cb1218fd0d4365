//! Messages about snapshots between the node hub, the applier, the log store, and the snapshot
//! sender and receiver actors.

use std::io::Read;

use actix::{Addr, Message};

use crate::core::{Index, LogId, NodeId, SnapshotMeta, Term};
use crate::storage::SnapshotInfo;
use crate::transport::{PeerLink, SnapshotFrame};

/// Node -> applier: capture the state machine and write a snapshot file; answer the node with
/// `SnapshotCreated`.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct TakeSnapshot;

/// Applier -> node: a snapshot file is durable (or could not be written).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SnapshotCreated(pub Result<SnapshotInfo, String>);

/// Node -> applier: replace the state machine's state with this snapshot (installed from the
/// leader) before applying anything after it; answer with `Restored`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RestoreSnapshot {
    /// What the snapshot covers.
    pub meta: SnapshotMeta,
    /// Its state machine payload, opened by the node (so the file cannot vanish meanwhile).
    pub payload: Box<dyn Read + Send>,
}

/// Applier -> node: the state machine now holds the snapshot's state.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Restored {
    /// The snapshot's last entry, now the applied index.
    pub last: LogId,
}

/// Node -> log store: drop log entries up to and including `upto` (a snapshot covers them).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Purge {
    /// Last entry to drop.
    pub upto: Index,
}

/// Node -> snapshot receiver: a chunk from the leader; acknowledgements go back through `link`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChunkIn {
    /// The chunk frame.
    pub frame: SnapshotFrame,
    /// The link to the leader.
    pub link: Addr<PeerLink>,
}

/// Snapshot receiver -> node: a whole snapshot from `from` arrived and was verified.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SnapshotArrived {
    /// The leader.
    pub from: NodeId,
    /// Its term.
    pub term: Term,
    /// The file.
    pub info: SnapshotInfo,
}

/// Node -> snapshot sender: the follower acknowledged.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct AckIn(pub SnapshotFrame);

/// Snapshot sender -> node: the transfer to `to` ended (`last` is `None` if it failed).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct SnapshotSendDone {
    /// The follower.
    pub to: NodeId,
    /// The snapshot's last entry when the follower has it.
    pub last: Option<LogId>,
}

/// Client -> node: take a snapshot now and answer with it.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<SnapshotSummary, crate::messages::node::ClientError>")]
pub struct SnapshotNow;

/// A snapshot as reported to clients.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotSummary {
    /// Last entry covered.
    pub index: Index,
    /// Its term.
    pub term: Term,
    /// File size in bytes.
    pub size: u64,
    /// The file.
    pub path: String,
    /// Voters recorded in the snapshot.
    pub voters: Vec<NodeId>,
    /// Learners recorded in the snapshot.
    pub learners: Vec<NodeId>,
}

impl SnapshotSummary {
    /// The summary of `info`.
    pub fn of(info: &SnapshotInfo) -> Self {
        Self {
            index: info.meta.last.index,
            term: info.meta.last.term,
            size: info.size,
            path: info.path.display().to_string(),
            voters: info.meta.membership.voters.iter().copied().collect(),
            learners: info.meta.membership.learners.iter().copied().collect(),
        }
    }
}
