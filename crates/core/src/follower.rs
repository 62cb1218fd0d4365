//! The follower side of log replication: the AppendEntries consistency check, conflict
//! truncation and commit propagation (§5.3). Must not import actix, heed or tokio.

use super::raft::RaftCore;
use super::types::{AppendOutcome, Entry, Index, LogId, Message, NodeId};

impl RaftCore {
    /// Handles AppendEntries from the current leader.
    pub(super) fn handle_append(
        &mut self,
        from: NodeId,
        prev: LogId,
        entries: Vec<Entry>,
        leader_commit: Index,
    ) {
        self.leader_commit_seen = self.leader_commit_seen.max(leader_commit);
        let term = self.hard.term;
        if prev.index < self.commit {
            // Everything up to `commit` already matches the leader: say so and let it move on.
            let outcome = AppendOutcome::Success {
                match_index: self.commit,
            };
            self.send(from, Message::AppendResponse { term, outcome });
            return;
        }
        if !self.log.matches(prev) {
            let hint = self
                .log
                .last_at_or_before(prev.index.min(self.log.last_index()), prev.term);
            let outcome = AppendOutcome::Conflict {
                rejected_prev: prev.index,
                hint,
            };
            self.send(from, Message::AppendResponse { term, outcome });
            return;
        }
        let last_new = prev.index + entries.len() as u64;
        if let Some(conflict) = self.log.first_conflict(&entries) {
            if conflict <= self.commit {
                // A leader never asks to overwrite a committed entry; refuse rather than obey.
                return;
            }
            let fresh: Vec<Entry> = entries
                .into_iter()
                .filter(|e| e.index >= conflict)
                .collect();
            let truncate = (conflict <= self.log.last_index()).then_some(conflict);
            self.stage_entries(truncate, fresh);
        }
        self.commit_to(leader_commit.min(last_new));
        let outcome = AppendOutcome::Success {
            match_index: last_new,
        };
        self.send(from, Message::AppendResponse { term, outcome });
    }

    /// Handles a heartbeat: the leader caps `commit` at what this node is known to hold.
    pub(super) fn handle_heartbeat(
        &mut self,
        from: NodeId,
        commit: Index,
        ctx: u64,
        leader_commit: Index,
    ) {
        self.leader_commit_seen = self.leader_commit_seen.max(leader_commit);
        self.commit_to(commit.min(self.log.last_index()));
        let (term, applied) = (self.hard.term, self.applied_report);
        self.send(from, Message::HeartbeatResponse { term, ctx, applied });
    }
}
