//! The actix runtime around the pure core: one actor per I/O or parallelism boundary.
//!
//! - [`node::RaftNode`]: the hub; owns the core and executes its actions.
//! - [`timer::ElectionTimer`]: randomized election timeouts and heartbeats.
//! - [`log_store::LogStore`]: the only writer of the log (group commit, own thread).
//! - [`applier::Applier`]: the only writer of the state machine (own thread).
//! - [`replicator::Replicator`]: one per follower while leader.

pub mod applier;
pub mod handle;
pub mod launch;
pub mod log_store;
pub mod node;
mod node_acks;
mod node_health;
mod node_members;
mod node_queries;
mod node_reads;
mod node_refusals;
pub mod node_snapshot;
mod node_transfer;
mod node_writes;
mod recover;
pub mod replicator;
pub mod snapshot_receiver;
pub mod snapshot_sender;
pub mod timer;

pub use handle::RaftHandle;

/// Mailbox capacity of the storage actors, which must never refuse a message (the node bounds
/// what it sends them). Not `usize::MAX`: actix computes `MAX_CAPACITY - capacity` when an
/// address is cloned, which would overflow.
pub(crate) const UNBOUNDED_MAILBOX: usize = 1 << 40;
pub use launch::{start_node, start_node_on, StartError};
