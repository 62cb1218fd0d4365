//! Static configuration of one core. Must not import actix, heed or tokio.

use super::types::{Membership, NodeId};

/// Protocol settings of a node. Timing lives in the runtime: the core only sees timer events.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// This node's id.
    pub id: NodeId,
    /// The configuration a new cluster starts with (the bootstrap): used until the log or a
    /// snapshot holds a configuration entry.
    pub initial: Membership,
    /// Ask for pre-votes before starting an election (dissertation §9.6).
    pub pre_vote: bool,
    /// A leader that has not heard from a quorum within an election timeout steps down, and nodes
    /// that hear from a leader ignore vote requests (dissertation §6.2, §9.6).
    pub check_quorum: bool,
    /// Most AppendEntries messages with entries in flight to one peer.
    pub max_inflight: usize,
    /// Most entries in one AppendEntries message.
    pub max_entries_per_msg: usize,
    /// Most bytes (approximately) of entries in one AppendEntries message.
    pub max_bytes_per_msg: usize,
}

impl CoreConfig {
    /// A configuration with the default protocol settings.
    pub fn new(id: NodeId, voters: impl IntoIterator<Item = NodeId>) -> Self {
        Self {
            id,
            initial: Membership::with_voters(voters),
            pre_vote: true,
            check_quorum: true,
            max_inflight: 64,
            max_entries_per_msg: 512,
            max_bytes_per_msg: 1 << 20,
        }
    }
}
