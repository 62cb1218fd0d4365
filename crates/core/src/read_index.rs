//! Linearizable reads without writing to the log: ReadIndex (dissertation §6.4), for reads on
//! the leader and, through `ReadIndexRequest`, for reads served by followers.
//!
//! A read asks the leader for its commit index; the leader confirms it still leads with a
//! heartbeat round answered by a quorum (every read waiting at that moment shares the round), and
//! the read may be served once the serving node's state machine has applied that index. A new
//! leader serves no read until the no-op of its term is committed: before that, its commit index
//! may lag entries an earlier leader already committed. Every heartbeat tick also starts a round;
//! the runtime turns confirmed rounds into a time-based leader lease (`QuorumConfirmed`).
//! Must not import actix, heed or tokio.

use std::collections::{BTreeMap, VecDeque};

use super::event::Action;
use super::raft::{NotLeader, RaftCore};
use super::types::{Index, Message, NodeId, Role};

/// Who asked for a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadOrigin {
    /// This node's client, by read id.
    Local(u64),
    /// A follower, by its read id.
    Remote(NodeId, u64),
}

/// Reads in flight.
#[derive(Debug, Default)]
pub(super) struct ReadState {
    /// Latest round started (increases across terms; carried in heartbeats as `ctx`).
    pub round: u64,
    /// Latest round a quorum confirmed in this term.
    pub confirmed: u64,
    /// Highest round each follower acknowledged in the current term.
    pub acks: BTreeMap<NodeId, u64>,
    /// Leader: reads waiting for their round: `(origin, read index, round)`, oldest first.
    pub pending: VecDeque<(ReadOrigin, Index, u64)>,
    /// Leader: reads waiting for this term's no-op to commit.
    pub waiting_noop: Vec<ReadOrigin>,
    /// Leader: index of this term's no-op.
    pub term_start: Index,
    /// Follower: reads sent to the leader, waiting for its answer.
    pub remote: Vec<u64>,
}

impl RaftCore {
    /// Starts linearizable reads `ids`. Each is answered later by `Action::ReadReady { id,
    /// index }` (serve it once `index` is applied here) or by `Action::ReadsFailed`. On the
    /// leader the leader confirms them itself; on a follower the leader is asked for the index.
    /// Without a known leader nothing starts and the error says so.
    pub fn read_index(&mut self, ids: Vec<u64>) -> Result<Vec<Action>, NotLeader> {
        match (self.role, self.leader) {
            (Role::Leader, _) => {
                self.leader_reads(ids.into_iter().map(ReadOrigin::Local).collect())
            }
            (_, Some(leader)) => {
                let term = self.hard.term;
                self.reads.remote.extend(ids.iter().copied());
                self.send(leader, Message::ReadIndexRequest { term, ids });
            }
            (_, None) => return Err(NotLeader { leader: None }),
        }
        Ok(self.finish_step())
    }

    /// Latest read round started (the runtime times rounds to derive the lease).
    pub fn read_round(&self) -> u64 {
        self.reads.round
    }

    /// Whether this node is the leader and its term's no-op is committed (it may serve reads).
    pub fn serves_reads(&self) -> bool {
        self.role == Role::Leader && self.commit >= self.reads.term_start
    }

    fn leader_reads(&mut self, origins: Vec<ReadOrigin>) {
        if origins.is_empty() {
            return;
        }
        if self.commit < self.reads.term_start {
            self.reads.waiting_noop.extend(origins);
            return;
        }
        self.new_round();
        let (round, index) = (self.reads.round, self.commit);
        self.reads
            .pending
            .extend(origins.into_iter().map(|o| (o, index, round)));
        self.confirm_reads();
    }

    /// Starts a round: heartbeats carrying it go to every follower.
    pub(super) fn new_round(&mut self) {
        self.reads.round += 1;
        let (term, round, leader_commit) = (self.hard.term, self.reads.round, self.commit);
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
                    leader_commit,
                },
            );
        }
        self.confirm_reads();
    }

    /// A follower answered a heartbeat carrying round `ctx`.
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
        let quorum = self.quorum();
        let confirmed = if quorum == 1 {
            self.reads.round
        } else {
            let mut acks: Vec<u64> = self
                .voter_peers()
                .into_iter()
                .map(|p| self.reads.acks.get(&p).copied().unwrap_or(0))
                .collect();
            acks.sort_unstable_by(|a, b| b.cmp(a));
            acks.get(quorum - 2).copied().unwrap_or(0)
        };
        if confirmed > self.reads.confirmed {
            self.reads.confirmed = confirmed;
            self.out.push(Action::QuorumConfirmed { round: confirmed });
        }
        let mut remote: BTreeMap<(NodeId, Index), Vec<u64>> = BTreeMap::new();
        while let Some(&(origin, index, round)) = self.reads.pending.front() {
            if round > confirmed {
                break;
            }
            self.reads.pending.pop_front();
            match origin {
                ReadOrigin::Local(id) => self.out.push(Action::ReadReady { id, index }),
                ReadOrigin::Remote(node, id) => remote.entry((node, index)).or_default().push(id),
            }
        }
        let term = self.hard.term;
        for ((node, index), ids) in remote {
            self.send(
                node,
                Message::ReadIndexResponse {
                    term,
                    ids,
                    index: Some(index),
                },
            );
        }
    }

    /// Leader: a follower asks for a read index.
    pub(super) fn handle_read_index_request(&mut self, from: NodeId, ids: Vec<u64>) {
        if self.role == Role::Leader {
            self.leader_reads(
                ids.into_iter()
                    .map(|id| ReadOrigin::Remote(from, id))
                    .collect(),
            );
        } else {
            let term = self.hard.term;
            self.send(
                from,
                Message::ReadIndexResponse {
                    term,
                    ids,
                    index: None,
                },
            );
        }
    }

    /// Follower: the leader answered read ids.
    pub(super) fn handle_read_index_response(&mut self, ids: Vec<u64>, index: Option<Index>) {
        let ids: Vec<u64> = ids
            .into_iter()
            .filter(|id| self.reads.remote.contains(id))
            .collect();
        self.reads.remote.retain(|id| !ids.contains(id));
        match index {
            Some(index) => {
                for id in ids {
                    self.out.push(Action::ReadReady { id, index });
                }
            }
            None if !ids.is_empty() => self.out.push(Action::ReadsFailed { ids }),
            None => {}
        }
    }

    /// The commit index moved: once this term's no-op is committed, waiting reads start.
    pub(super) fn reads_after_commit(&mut self) {
        if self.role == Role::Leader
            && self.commit >= self.reads.term_start
            && !self.reads.waiting_noop.is_empty()
        {
            let origins = std::mem::take(&mut self.reads.waiting_noop);
            self.leader_reads(origins);
        }
    }

    /// Taking office: no acknowledgement of an earlier term counts.
    pub(super) fn reads_on_new_term(&mut self, term_start: Index) {
        self.reads.acks.clear();
        self.reads.confirmed = self.reads.round;
        self.reads.term_start = term_start;
    }

    /// Leadership or the known leader changed: every read not yet confirmed fails (the client may
    /// retry), local or from followers.
    pub(super) fn fail_reads(&mut self) {
        let mut local = std::mem::take(&mut self.reads.remote);
        let mut remote: BTreeMap<NodeId, Vec<u64>> = BTreeMap::new();
        let origins = self
            .reads
            .pending
            .drain(..)
            .map(|(o, ..)| o)
            .chain(self.reads.waiting_noop.drain(..))
            .collect::<Vec<_>>();
        for origin in origins {
            match origin {
                ReadOrigin::Local(id) => local.push(id),
                ReadOrigin::Remote(node, id) => remote.entry(node).or_default().push(id),
            }
        }
        self.reads.acks.clear();
        let term = self.hard.term;
        for (node, ids) in remote {
            self.send(
                node,
                Message::ReadIndexResponse {
                    term,
                    ids,
                    index: None,
                },
            );
        }
        if !local.is_empty() {
            self.out.push(Action::ReadsFailed { ids: local });
        }
    }
}
