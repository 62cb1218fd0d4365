//! Per-node counters, shared by the actors through an `Arc` and read by the status endpoints.
//! Plain atomics: cheap enough for the hot path, and per node (not global) so that several nodes
//! in one process report separately.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters of one node.
#[derive(Debug, Default)]
pub struct NodeMetrics {
    /// Durable log writes (each one transaction and one fsync).
    pub fsyncs: AtomicU64,
    /// `Persist` requests written (several per fsync under load: group commit).
    pub persist_ops: AtomicU64,
    /// Total time spent in durable log writes, microseconds.
    pub fsync_micros: AtomicU64,
    /// Entries applied to the state machine.
    pub applied_entries: AtomicU64,
    /// Client proposals committed and applied.
    pub proposals_ok: AtomicU64,
    /// Client proposals refused or failed.
    pub proposals_failed: AtomicU64,
    /// Times this node observed a new leader.
    pub leader_changes: AtomicU64,
    /// Peer messages received.
    pub messages_in: AtomicU64,
    /// Peer messages sent.
    pub messages_out: AtomicU64,
}

impl NodeMetrics {
    /// Records one group-committed write of `ops` persist requests.
    pub fn record_fsync(&self, ops: usize, took: Duration) {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.persist_ops.fetch_add(ops as u64, Ordering::Relaxed);
        self.fsync_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
