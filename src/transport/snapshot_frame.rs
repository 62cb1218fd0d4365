//! Snapshot transfer frames (the InstallSnapshot RPC of §7, streamed): the leader sends chunks
//! of a snapshot file, the follower acknowledges each with the offset it holds, so a transfer
//! goes on from where an interrupted one stopped. Chunks never pass through the Raft core.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::core::types::{LogId, NodeId, Term};

/// One snapshot transfer frame, addressed like a Raft envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotFrame {
    /// Sending node.
    pub from: NodeId,
    /// Receiving node.
    pub to: NodeId,
    /// The leader's term.
    pub term: Term,
    /// The snapshot's last entry: identifies the snapshot.
    pub last: LogId,
    /// What the frame carries.
    pub body: SnapshotBody,
}

/// Chunk or acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotBody {
    /// Leader -> follower: bytes `offset .. offset + data.len()` of the snapshot file. A chunk
    /// without data asks where to start.
    Chunk {
        /// Size of the whole file.
        total: u64,
        /// CRC-32 of the whole file (its trailer), so a resumed transfer is of the same file.
        file_crc: u32,
        /// Where `data` goes.
        offset: u64,
        /// The bytes.
        data: Bytes,
        /// CRC-32 of `data`.
        chunk_crc: u32,
    },
    /// Follower -> leader: it holds the file up to `next_offset`; `done` once the whole file is
    /// verified and handed to Raft; `error` when it gave up on this transfer.
    Ack {
        /// Bytes held.
        next_offset: u64,
        /// The snapshot is complete and was handed to Raft.
        done: bool,
        /// Why the follower refused the transfer.
        error: Option<String>,
    },
}

impl SnapshotFrame {
    /// Short name for logs.
    pub fn kind(&self) -> &'static str {
        match self.body {
            SnapshotBody::Chunk { .. } => "snapshot_chunk",
            SnapshotBody::Ack { .. } => "snapshot_ack",
        }
    }
}
