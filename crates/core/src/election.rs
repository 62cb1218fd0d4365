//! Leader election (§5.2, §5.4.1) with pre-vote and check-quorum (dissertation §9.6, §6.2).
//! Must not import actix, heed or tokio.

use super::raft::RaftCore;
use super::types::{EntryPayload, LogId, Message, NodeId, Role, Term};

impl RaftCore {
    /// The election timer fired: campaign, or as leader check that a quorum is still in contact.
    pub(super) fn on_election_timeout(&mut self, epoch: u64) {
        if epoch != self.election_epoch {
            return; // a timer that was re-armed or cancelled after it fired
        }
        if self.role == Role::Leader {
            // A removed leader still finishing its own removal checks its quorum too: cut off,
            // it steps down instead of leading a configuration that has moved on without it.
            self.check_quorum();
            return;
        }
        if !self.is_voter() {
            // Learners and removed nodes never campaign.
            self.arm_election();
            return;
        }
        match self.role {
            Role::Leader => self.check_quorum(),
            _ if self.cfg.pre_vote => self.become_pre_candidate(),
            _ => self.become_candidate(),
        }
    }

    /// Check-quorum: a leader cut off from a majority steps down so that clients look elsewhere.
    /// A leadership transfer still pending after an election timeout is abandoned here.
    fn check_quorum(&mut self) {
        self.transferee = None;
        if self.cfg.check_quorum {
            let voters = &self.configs.effective().voters;
            let me = usize::from(voters.contains(&self.cfg.id));
            let active = me
                + self
                    .progress
                    .iter()
                    .filter(|(id, p)| voters.contains(id) && p.recent_active)
                    .count();
            if active < self.quorum() {
                let term = self.hard.term;
                self.become_follower(term, None);
                return;
            }
            for p in self.progress.values_mut() {
                p.recent_active = false;
            }
        }
        self.arm_election();
    }

    /// Asks for pre-votes for `term + 1` without changing the term or the vote.
    fn become_pre_candidate(&mut self) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.progress.clear();
        self.start_campaign(true, false);
    }

    /// Starts a real election in a new term, voting for itself (§5.2).
    pub(super) fn become_candidate(&mut self) {
        self.campaign(false);
    }

    /// Campaigns at once after a leader's `TimeoutNow` (leadership transfer, §3.10).
    pub(super) fn campaign_for_transfer(&mut self) {
        self.campaign(true);
    }

    fn campaign(&mut self, transfer: bool) {
        let term = self.hard.term + 1;
        self.set_term(term);
        self.hard.voted_for = Some(self.cfg.id);
        self.hard_dirty = true;
        self.role = Role::Candidate;
        self.leader = None;
        self.progress.clear();
        self.start_campaign(false, transfer);
    }

    fn start_campaign(&mut self, pre_vote: bool, transfer: bool) {
        self.votes.clear();
        self.votes.insert(self.cfg.id, true);
        self.arm_election();
        if self.tally() {
            return;
        }
        let term = self.hard.term + u64::from(pre_vote);
        let last_log = self.log.last_id();
        for peer in self.voter_peers() {
            self.send(
                peer,
                Message::VoteRequest {
                    term,
                    last_log,
                    pre_vote,
                    transfer,
                },
            );
        }
    }

    /// Counts the votes of the current campaign and moves on when a quorum decided.
    /// Returns whether the campaign ended.
    fn tally(&mut self) -> bool {
        let voters = &self.configs.effective().voters;
        let counted = |granted: bool| {
            self.votes
                .iter()
                .filter(|(id, &g)| g == granted && voters.contains(id))
                .count()
        };
        let (granted, rejected) = (counted(true), counted(false));
        if granted >= self.quorum() {
            match self.role {
                Role::PreCandidate => self.become_candidate(),
                Role::Candidate => self.become_leader(),
                _ => {}
            }
            return true;
        }
        if rejected >= self.quorum() {
            let term = self.hard.term;
            self.become_follower(term, None);
            return true;
        }
        false
    }

    /// Takes office: progress for every follower and a no-op entry of the new term (§5.4.2):
    /// only entries of the current term are committed by counting, so the no-op commits the
    /// entries of earlier terms the new leader holds.
    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        self.votes.clear();
        let next = self.log.last_index() + 1;
        self.reads_on_new_term(next);
        self.progress.clear();
        self.sync_progress(); // every member, probing from `next`; the no-op goes out below
        debug_assert!(self.progress.values().all(|p| p.next_index == next));
        self.append_as_leader(vec![EntryPayload::Noop]);
        self.arm_election(); // the check-quorum interval
        self.broadcast_append();
    }

    /// Handles RequestVote or a pre-vote whose term was already reconciled by `on_receive`.
    pub(super) fn handle_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        last_log: LogId,
        pre_vote: bool,
    ) {
        let can_vote = self.hard.voted_for == Some(from)
            || (self.hard.voted_for.is_none() && self.leader.is_none())
            || (pre_vote && term > self.hard.term);
        let up_to_date = last_log >= self.log.last_id();
        if can_vote && up_to_date {
            if !pre_vote {
                self.hard.voted_for = Some(from);
                self.hard_dirty = true;
                self.arm_election();
            }
            self.send(
                from,
                Message::VoteResponse {
                    term,
                    granted: true,
                    pre_vote,
                },
            );
        } else {
            self.reject_vote(from, pre_vote);
        }
    }

    /// Refuses a vote or pre-vote, telling the candidate this node's term.
    pub(super) fn reject_vote(&mut self, from: NodeId, pre_vote: bool) {
        let term = self.hard.term;
        self.send(
            from,
            Message::VoteResponse {
                term,
                granted: false,
                pre_vote,
            },
        );
    }

    /// Counts a vote or pre-vote answer for the campaign in progress.
    pub(super) fn handle_vote_response(
        &mut self,
        from: NodeId,
        term: Term,
        granted: bool,
        pre_vote: bool,
    ) {
        let current = match (self.role, pre_vote) {
            (Role::PreCandidate, true) => !granted || term == self.hard.term + 1,
            (Role::Candidate, false) => term == self.hard.term,
            _ => false,
        };
        if current {
            self.votes.insert(from, granted);
            self.tally();
        }
    }
}
