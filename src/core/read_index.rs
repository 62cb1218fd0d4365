//! Linearizable reads without writing to the log: ReadIndex (dissertation §6.4).
//!
//! A read asks the leader for its commit index, then the leader confirms it still leads with one
//! heartbeat round answered by a quorum (every read waiting at that moment shares the round), and
//! the read may be served once the state machine has applied that index. A new leader serves no
//! read until the no-op of its term is committed: before that, its commit index may lag entries
//! an earlier leader already committed. Must not import actix, heed or tokio.

use std::collections::{BTreeMap, VecDeque};

use super::event::Action;
use super::raft::{NotLeader, RaftCore};
use super::types::{Index, Message, NodeId, Role};

/// Reads in flight on a leader.
#[derive(Debug, Default)]
pub(super) struct ReadState {
    /// Latest read round started (increases across terms; carried in heartbeats as `ctx`).
    pub round: u64,
    /// Highest round each follower acknowledged in the current term.
    pub acks: BTreeMap<NodeId, u64>,
    /// Reads waiting for their round to be confirmed: `(id, read index, round)`, oldest first.
    pub pending: VecDeque<(u64, Index, u64)>,
    /// Reads waiting for this term's no-op to commit.
    pub waiting_noop: Vec<u64>,
    /// Index of this leader term's no-op.
    pub term_start: Index,
}

impl RaftCore {
    /// Starts linearizable reads `ids` (leader only). Each is answered later by
    /// `Action::ReadReady { id, index }` (serve it once `index` is applied) or, if leadership is
    /// lost first, by `Action::ReadsFailed`.
    pub fn read_index(&mut self, ids: Vec<u64>) -> Result<Vec<Action>, NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            });
        }
        if self.commit < self.reads.term_start {
            self.reads.waiting_noop.extend(ids);
        } else {
            self.start_read_round(ids);
        }
        Ok(self.finish_step())
    }

    /// Reads waiting for confirmation or for the no-op (for status reports).
    pub fn reads_in_flight(&self) -> usize {
        self.reads.pending.len() + self.reads.waiting_noop.len()
    }

    fn start_read_round(&mut self, ids: Vec<u64>) {
        if ids.is_empty() {
            return;
        }
        self.reads.round += 1;
        let (round, index) = (self.reads.round, self.commit);
        self.reads
            .pending
            .extend(ids.into_iter().map(|id| (id, index, round)));
        if self.cfg.quorum() > 1 {
            let term = self.hard.term;
            let beats: Vec<(NodeId, Index)> = self
                .progress
                .iter()
                .map(|(&peer, p)| (peer, p.match_index.min(self.commit)))
                .collect();
            for (peer, commit) in beats {
                self.send(
                    peer,
                    Message::Heartbeat {
                        term,
                        commit,
                        ctx: round,
                    },
                );
            }
        }
        self.confirm_reads();
    }

    /// A follower answered a heartbeat carrying read round `ctx`.
    pub(super) fn read_acknowledged(&mut self, from: NodeId, ctx: u64) {
        if ctx == 0 {
            return;
        }
        let ack = self.reads.acks.entry(from).or_default();
        *ack = (*ack).max(ctx);
        self.confirm_reads();
    }

    /// Releases every read whose round a quorum (this leader included) has acknowledged.
    fn confirm_reads(&mut self) {
        let quorum = self.cfg.quorum();
        let confirmed = if quorum == 1 {
            self.reads.round
        } else {
            let mut acks: Vec<u64> = self
                .cfg
                .peers()
                .map(|p| self.reads.acks.get(&p).copied().unwrap_or(0))
                .collect();
            acks.sort_unstable_by(|a, b| b.cmp(a));
            acks.get(quorum - 2).copied().unwrap_or(0)
        };
        while let Some(&(id, index, round)) = self.reads.pending.front() {
            if round > confirmed {
                break;
            }
            self.reads.pending.pop_front();
            self.out.push(Action::ReadReady { id, index });
        }
    }

    /// The commit index moved: once this term's no-op is committed, waiting reads start.
    pub(super) fn reads_after_commit(&mut self) {
        if self.role == Role::Leader
            && self.commit >= self.reads.term_start
            && !self.reads.waiting_noop.is_empty()
        {
            let ids = std::mem::take(&mut self.reads.waiting_noop);
            self.start_read_round(ids);
        }
    }

    /// Taking office: no acknowledgement of an earlier term counts.
    pub(super) fn reads_on_new_term(&mut self, term_start: Index) {
        self.reads.acks.clear();
        self.reads.term_start = term_start;
    }

    /// Leadership lost: every read not yet confirmed fails (the client may retry elsewhere).
    pub(super) fn fail_reads(&mut self) {
        let mut ids: Vec<u64> = self.reads.pending.drain(..).map(|(id, ..)| id).collect();
        ids.append(&mut self.reads.waiting_noop);
        self.reads.acks.clear();
        if !ids.is_empty() {
            self.out.push(Action::ReadsFailed { ids });
        }
    }
}
