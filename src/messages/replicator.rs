//! Messages to a `Replicator` actor (one per follower, leader only).

use actix::Message;

use crate::core::{Envelope, Index};

/// Node -> replicator: send this AppendEntries or heartbeat to the replicator's follower.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Replicate(pub Envelope);

/// Node -> replicator: the follower acknowledged entries up to `match_index`.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Acknowledged {
    /// Highest index the follower holds.
    pub match_index: Index,
}

/// Node -> replicator: the follower answered a heartbeat (it is alive).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Heard;

/// Replication figures of one follower, as measured by its replicator.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ReplicationStats {
    /// Round-trip time of the latest acknowledged append, in microseconds.
    pub rtt_us: Option<u64>,
    /// Milliseconds since the follower last answered (an append or a heartbeat).
    pub last_ack_ms_ago: Option<u64>,
    /// Appends sent and not yet acknowledged.
    pub inflight: usize,
    /// Messages sent to this follower in this term.
    pub sent: u64,
}

/// Anyone -> replicator: report its figures.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "ReplicationStats")]
pub struct GetReplicationStats;
