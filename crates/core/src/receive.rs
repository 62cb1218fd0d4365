//! Term reconciliation for every incoming message (§5.1) and dispatch to the handlers.
//! Must not import actix, heed or tokio.

use super::raft::RaftCore;
use super::types::{Envelope, Message, NodeId, Role};

impl RaftCore {
    /// Handles one message from a peer.
    pub(super) fn on_receive(&mut self, envelope: Envelope) {
        let Envelope { from, to, msg } = envelope;
        // Messages from nodes this node does not know are processed too (dissertation §4.1): a
        // leader may hold a newer configuration than this node, which includes it. Only votes
        // from non-voters and anything from a node whose removal is committed are refused.
        if to != self.cfg.id || from == self.cfg.id {
            return; // misaddressed
        }
        if self.refuses_sender(from, &msg) {
            return;
        }
        let term = msg.term();
        if term > self.hard.term {
            match &msg {
                Message::VoteRequest {
                    pre_vote, transfer, ..
                } => {
                    // Check-quorum lease: while this node hears from a leader it ignores
                    // campaigns, so a node rejoining from a partition cannot depose it; except
                    // the campaign the leader itself asked for (leadership transfer).
                    if self.cfg.check_quorum && self.in_lease() && !transfer {
                        return;
                    }
                    if !pre_vote {
                        self.become_follower(term, None);
                    }
                }
                // A granted pre-vote carries the term the candidate asked about, not the voter's.
                Message::VoteResponse {
                    pre_vote: true,
                    granted: true,
                    ..
                } => {}
                Message::AppendRequest { .. } | Message::Heartbeat { .. } => {
                    self.become_follower(term, Some(from));
                }
                _ => self.become_follower(term, None),
            }
        } else if term < self.hard.term {
            match msg {
                // Tell a stale leader about the new term so that it steps down.
                Message::AppendRequest { .. } | Message::Heartbeat { .. } => {
                    let term = self.hard.term;
                    self.send(
                        from,
                        Message::HeartbeatResponse {
                            term,
                            ctx: 0,
                            applied: 0,
                        },
                    );
                }
                Message::VoteRequest { pre_vote: true, .. } => self.reject_vote(from, true),
                _ => {}
            }
            return;
        }

        if self.role == Role::Leader {
            if let Some(p) = self.progress.get_mut(&from) {
                p.recent_active = true;
            }
        }
        match msg {
            Message::VoteRequest {
                term,
                last_log,
                pre_vote,
                ..
            } => self.handle_vote_request(from, term, last_log, pre_vote),
            Message::VoteResponse {
                term,
                granted,
                pre_vote,
            } => self.handle_vote_response(from, term, granted, pre_vote),
            Message::AppendRequest {
                term,
                prev,
                entries,
                commit,
            } => {
                self.accept_leader(term, from);
                self.handle_append(from, prev, entries, commit);
            }
            Message::Heartbeat {
                term,
                commit,
                ctx,
                leader_commit,
            } => {
                self.accept_leader(term, from);
                self.handle_heartbeat(from, commit, ctx, leader_commit);
            }
            Message::ReadIndexRequest { ids, .. } => self.handle_read_index_request(from, ids),
            Message::TimeoutNow { .. } => self.handle_timeout_now(from),
            Message::ReadIndexResponse { ids, index, .. } => {
                if self.leader == Some(from) {
                    self.handle_read_index_response(ids, index);
                }
            }
            Message::AppendResponse { outcome, .. } => {
                if self.role == Role::Leader {
                    self.handle_append_response(from, outcome);
                }
            }
            Message::HeartbeatResponse { ctx, applied, .. } => {
                if self.role == Role::Leader {
                    self.handle_heartbeat_response(from, ctx, applied);
                }
            }
        }
    }

    /// Whether a message from `from` is refused before it can touch this node's term or log:
    ///
    /// - a vote or pre-vote request from a node that is not a voter in this node's configuration
    ///   (a learner, a removed node or a stranger cannot make voters change term or vote);
    /// - anything from a node that this node's committed configuration lists as removed and
    ///   that is not a member again in its latest configuration. A removed leader keeps being
    ///   heard until this node learns that its removal committed, so that it can finish
    ///   committing it (dissertation §4.2.2).
    ///
    /// Refusing a message is always safe in Raft (the network may lose any message); a node
    /// that lags behind a configuration that made a candidate a voter only delays that
    /// candidate, whom the up-to-date voters can still elect.
    pub fn refuses_sender(&self, from: NodeId, msg: &Message) -> bool {
        let effective = self.configs.effective();
        if matches!(msg, Message::VoteRequest { .. }) && !effective.voters.contains(&from) {
            return true;
        }
        self.is_removed(from)
    }

    /// Whether `from` is a removed member: listed as removed by the configuration this node
    /// knows committed, and not a member of its latest configuration.
    pub fn is_removed(&self, from: NodeId) -> bool {
        !self.configs.effective().contains(from)
            && self.configs.committed(self.commit).removed.contains(&from)
    }

    /// A leader of the current term spoke: follow it and restart the election timer.
    fn accept_leader(&mut self, term: u64, from: u64) {
        if self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(term, Some(from));
        } else {
            self.leader_lease = true;
            self.arm_election();
        }
    }

    /// Whether this node heard from a live leader recently enough to ignore campaigns: a leader
    /// is always in lease (check-quorum deposes it when it is not), a follower until the minimum
    /// election timeout passed without hearing from its leader.
    fn in_lease(&self) -> bool {
        match self.role {
            Role::Leader => true,
            _ => self.leader.is_some() && self.leader_lease,
        }
    }
}
