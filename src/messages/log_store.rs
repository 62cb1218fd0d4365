//! Messages to the `LogStore` actor.

use actix::Message;

use crate::core::{Entry, HardState, Index, SnapshotMeta};

/// Node -> log store: make this durable, then report `Persisted { io_seq }`. Sent in `io_seq`
/// order; every `Persist` waiting in the mailbox is written in one transaction and one fsync.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Persist {
    /// Sequence number of this write.
    pub io_seq: u64,
    /// New term and vote, if changed.
    pub hard_state: Option<HardState>,
    /// A snapshot from the leader replaces the log: delete every entry, make its last entry the
    /// log's base (first of all).
    pub install: Option<SnapshotMeta>,
    /// Delete entries from this index on, before appending.
    pub truncate_from: Option<Index>,
    /// Entries to append.
    pub entries: Vec<Entry>,
}
