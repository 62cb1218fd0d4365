//! Messages refused because of who sent them: votes from non-voters and anything from a removed
//! member (see `RaftCore::refuses_sender`). Each refusal is counted in
//! `raftix_peer_refused_total{reason="non_member"}` and logged, at most once every
//! [`WARN_EVERY`] per sender so that a removed node that keeps calling does not flood the log.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::node::RaftNode;
use crate::core::NodeId;

/// Shortest interval between two warnings about the same sender.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// When each sender was last warned about, and how many of its messages were refused since.
#[derive(Default)]
pub struct Refusals {
    last_warned: BTreeMap<NodeId, (Option<Instant>, u64)>,
}

impl RaftNode {
    /// Counts and (rate-limited) logs a message refused from `from`.
    pub(super) fn refused_from_non_member(&mut self, from: NodeId, kind: &'static str) {
        self.parts
            .metrics
            .peer_refused
            .with_label_values(&["non_member"])
            .inc();
        let now = Instant::now();
        let (warned, count) = self.refusals.last_warned.entry(from).or_insert((None, 0));
        *count += 1;
        if warned.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
            let refused = *count;
            *warned = Some(now);
            *count = 0;
            let removed = self.parts.core.is_removed(from);
            tracing::warn!(
                node = self.id,
                from,
                kind,
                refused,
                reason = if removed { "removed member" } else { "not a voter" },
                "refusing peer message from a node that is not a member (a removed node, a learner or a stranger asking for votes)"
            );
        }
    }
}
