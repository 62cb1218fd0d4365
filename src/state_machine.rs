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
    /// The disk refuses writes for now (full, read-only): nothing was applied, and the same
    /// entries may be applied again once it accepts writes. The applier retries them.
    #[error("the disk refuses writes: {0}")]
    DiskRefused(String),
}

/// A deterministic state machine driven by the replicated log.
pub trait StateMachine: Send + 'static {
    /// Index of the last entry whose effects are durable (0 when nothing was applied).
    fn applied_index(&self) -> Index;

    /// Verifies the integrity of the stored state (checksums of every record, say), once, when
    /// the node starts and before it serves; returns how many records were checked. A
    /// [`StateMachineError::Corrupt`] makes the node refuse to start. The default checks
    /// nothing and returns 0.
    fn verify(&self) -> Result<u64, StateMachineError> {
        Ok(0)
    }

    /// Applies committed entries, contiguous and starting right after `applied_index()`.
    ///
    /// Returns one output per entry, in order (an empty output for entries without a command).
    /// The effects and the new applied index must become durable together, before returning.
    fn apply(&mut self, entries: &[Entry]) -> Result<Vec<Bytes>, StateMachineError>;

    /// Captures the state as of `applied_index()` for a snapshot.
    ///
    /// Called on the applier's thread between two `apply` calls; it must be quick (open a read
    /// transaction, clone a small structure). The returned source writes the captured state on
    /// another thread while `apply` goes on, so it must not see later changes.
    fn snapshot(&mut self) -> Result<Box<dyn SnapshotSource>, StateMachineError>;

    /// Replaces the whole state with a snapshot's contents (as written by a [`SnapshotSource`]
    /// of this state machine type) and makes `last_index` the applied index, durably and
    /// atomically: after a crash the state is either the old one or the restored one.
    ///
    /// Malformed data is [`StateMachineError::Corrupt`] and leaves the state unchanged.
    fn restore(
        &mut self,
        last_index: Index,
        data: &mut dyn std::io::Read,
    ) -> Result<(), StateMachineError>;
}

/// A state machine's state captured by [`StateMachine::snapshot`], written out on another thread.
pub trait SnapshotSource: Send + 'static {
    /// Writes the captured state to `out` (in a format [`StateMachine::restore`] reads back).
    fn write_to(self: Box<Self>, out: &mut dyn std::io::Write) -> Result<(), StateMachineError>;
}
