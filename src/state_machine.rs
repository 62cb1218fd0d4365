//! The `StateMachine` trait that embedders implement, and its error type.
//!
//! A state machine receives committed entries in log order, exactly once across restarts: it must
//! make its effects and its applied index durable in one atomic step, and report that index when
//! the node starts so that nothing is applied twice or skipped.

use bytes::Bytes;

use crate::core::{Entry, Index};

/// Why a state machine could not apply entries. Any error stops the node: an entry that cannot
/// be applied would leave this replica diverged from the others.
#[derive(Debug, thiserror::Error)]
pub enum StateMachineError {
    /// The storage behind the state machine failed.
    #[error("state machine storage failed: {0}")]
    Storage(String),
    /// The state machine's durable state is inconsistent.
    #[error("state machine data is corrupt: {0}")]
    Corrupt(String),
}

/// A deterministic state machine driven by the replicated log.
pub trait StateMachine: Send + 'static {
    /// Index of the last entry whose effects are durable (0 when nothing was applied).
    fn applied_index(&self) -> Index;

    /// Applies committed entries, contiguous and starting right after `applied_index()`.
    ///
    /// Returns one output per entry, in order (an empty output for entries without a command).
    /// The effects and the new applied index must become durable together, before returning.
    fn apply(&mut self, entries: &[Entry]) -> Result<Vec<Bytes>, StateMachineError>;
}
