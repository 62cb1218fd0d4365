//! Cluster membership in the core: the history of configurations in the log, and single-server
//! changes (dissertation §4.1–§4.2). Must not import actix, heed or tokio.
//!
//! A configuration takes effect on a node as soon as the node appends it to its log, committed or
//! not, and is forgotten again if the entry is truncated. The leader accepts a change only when
//! the previous one is committed and an entry of its own term is committed (the fix to the
//! single-server algorithm described on the raft-dev list in 2015), and each change adds or
//! removes at most one voter, so any two consecutive configurations share a majority.

use std::collections::BTreeSet;

use super::event::Action;
use super::progress::Progress;
use super::raft::RaftCore;
use super::types::{EntryPayload, Index, LogId, Membership, NodeId, Role};

/// The configurations a node knows of: the one in force at `base` (from a snapshot or the
/// bootstrap) and every configuration entry in the log after it.
#[derive(Clone, Debug, Default)]
pub struct ConfigHistory {
    base: (Index, Membership),
    /// Configuration entries after `base.0`, ascending by index.
    entries: Vec<(Index, Membership)>,
}

impl ConfigHistory {
    /// A history starting with `membership` in force at `index`.
    pub fn new(index: Index, membership: Membership) -> Self {
        Self {
            base: (index, membership),
            entries: Vec::new(),
        }
    }

    /// The latest configuration (the one in force).
    pub fn effective(&self) -> &Membership {
        self.entries.last().map_or(&self.base.1, |(_, m)| m)
    }

    /// Index of the latest configuration entry (or of the base).
    pub fn effective_index(&self) -> Index {
        self.entries.last().map_or(self.base.0, |(i, _)| *i)
    }

    /// The latest configuration at or below `commit`.
    pub fn committed(&self, commit: Index) -> &Membership {
        self.entries
            .iter()
            .rev()
            .find(|(i, _)| *i <= commit)
            .map_or(&self.base.1, |(_, m)| m)
    }

    /// Index of the latest configuration at or below `commit`.
    pub fn committed_index(&self, commit: Index) -> Index {
        self.entries
            .iter()
            .rev()
            .find(|(i, _)| *i <= commit)
            .map_or(self.base.0, |(i, _)| *i)
    }

    /// Records a configuration entry appended at `index`.
    pub fn push(&mut self, index: Index, membership: Membership) {
        self.entries.retain(|(i, _)| *i < index);
        self.entries.push((index, membership));
    }

    /// Forgets configuration entries at or after `index` (they were truncated).
    pub fn truncate_from(&mut self, index: Index) {
        self.entries.retain(|(i, _)| *i < index);
    }

    /// Folds entries at or below `index` into the base (the log before it was compacted).
    pub fn compact_to(&mut self, index: Index) {
        while self.entries.first().is_some_and(|(i, _)| *i <= index) {
            self.base = self.entries.remove(0);
        }
    }

    /// Replaces everything with `membership` in force at `index` (a snapshot was installed).
    pub fn reset(&mut self, index: Index, membership: Membership) {
        *self = Self::new(index, membership);
    }
}

/// A membership change the leader is asked to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigChange {
    /// Add a non-voting member that receives the log, reachable at `addr`.
    AddLearner {
        /// The new member.
        id: NodeId,
        /// Its peer (Raft) address.
        addr: String,
    },
    /// Make a learner a voter (it must be caught up).
    Promote {
        /// The learner.
        id: NodeId,
    },
    /// Make a voter a learner.
    Demote {
        /// The voter.
        id: NodeId,
    },
    /// Remove a voter or learner from the cluster.
    Remove {
        /// The member.
        id: NodeId,
    },
}

/// Why a membership change was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeError {
    /// This node is not the leader (the known leader, if any).
    NotLeader(Option<NodeId>),
    /// Another change is not committed yet, this leader's first entry is not committed yet, or a
    /// leadership transfer is running: retry shortly.
    InProgress,
    /// The node is not a member (or not a learner, for a promotion).
    UnknownNode(NodeId),
    /// The node is already a voter (adding it as a learner would demote it).
    AlreadyVoter(NodeId),
    /// A learner must hold (nearly) the whole log before it may vote.
    NotCaughtUp {
        /// The learner.
        id: NodeId,
        /// Highest index it is known to hold.
        matched: Index,
        /// The leader's last index.
        last: Index,
    },
    /// The change would leave the cluster without a voter.
    LastVoter,
    /// The address is empty.
    BadAddress,
}

impl std::fmt::Display for ChangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChangeError::NotLeader(_) => write!(f, "this node is not the leader"),
            ChangeError::InProgress => write!(
                f,
                "another membership change or leadership transfer is in progress; retry"
            ),
            ChangeError::UnknownNode(id) => write!(f, "node {id} is not such a member"),
            ChangeError::AlreadyVoter(id) => write!(f, "node {id} is already a voter"),
            ChangeError::NotCaughtUp { id, matched: 0, .. } => write!(
                f,
                "learner {id} has never answered the leader: is `raftix serve --id {id}` \
                 running, and can the leader reach its peer address? It can be promoted once \
                 it has caught up"
            ),
            ChangeError::NotCaughtUp { id, matched, last } => write!(
                f,
                "learner {id} holds the log up to {matched} of {last}: {} entries behind, at \
                 most {PROMOTE_MAX_LAG} allowed; wait until it catches up",
                last.saturating_sub(*matched)
            ),
            ChangeError::LastVoter => write!(f, "the cluster would be left without a voter"),
            ChangeError::BadAddress => write!(f, "a peer address is required"),
        }
    }
}

impl std::error::Error for ChangeError {}

/// A learner at most this many entries behind the leader may be promoted.
pub const PROMOTE_MAX_LAG: Index = 512;

impl RaftCore {
    /// The configuration in force on this node (the latest in its log).
    pub fn membership(&self) -> &Membership {
        self.configs.effective()
    }

    /// The latest committed configuration this node knows of.
    pub fn committed_membership(&self) -> &Membership {
        self.configs.committed(self.commit)
    }

    /// Whether this node is a voter of the configuration in force.
    pub fn is_voter(&self) -> bool {
        self.configs.effective().voters.contains(&self.cfg.id)
    }

    /// Votes needed for a majority of the voters in force.
    pub(super) fn quorum(&self) -> usize {
        self.configs.effective().quorum()
    }

    /// Voters in force other than this node.
    pub(super) fn voter_peers(&self) -> Vec<NodeId> {
        let me = self.cfg.id;
        self.configs
            .effective()
            .voters
            .iter()
            .copied()
            .filter(|&v| v != me)
            .collect()
    }

    /// Appends a configuration change (leader only). Returns the id of the new entry, or `None`
    /// when the configuration already is as asked (nothing appended).
    pub fn propose_change(
        &mut self,
        change: ConfigChange,
    ) -> Result<(Option<LogId>, Vec<Action>), ChangeError> {
        if self.role != Role::Leader {
            return Err(ChangeError::NotLeader(self.leader));
        }
        // Checked first: while a change is pending, even a request that matches the pending
        // configuration is told to retry rather than answered before it commits.
        if self.transferee.is_some()
            || self.configs.effective_index() > self.commit
            || self.log.term_at(self.commit) != Some(self.hard.term)
        {
            return Err(ChangeError::InProgress);
        }
        let current = self.configs.effective().clone();
        let Some(next) = self.changed_membership(&current, change)? else {
            return Ok((None, self.finish_step()));
        };
        let ids = self.append_as_leader(vec![EntryPayload::Config(next)]);
        self.broadcast_append();
        Ok((ids.first().copied(), self.finish_step()))
    }

    /// The configuration `change` leads to, `None` if it changes nothing.
    fn changed_membership(
        &self,
        current: &Membership,
        change: ConfigChange,
    ) -> Result<Option<Membership>, ChangeError> {
        let mut next = current.clone();
        match change {
            ConfigChange::AddLearner { id, addr } => {
                if addr.trim().is_empty() {
                    return Err(ChangeError::BadAddress);
                }
                if current.voters.contains(&id) {
                    return Err(ChangeError::AlreadyVoter(id));
                }
                next.learners.insert(id);
                next.addrs.insert(id, addr);
                next.removed.remove(&id);
            }
            ConfigChange::Promote { id } => {
                if current.voters.contains(&id) {
                    return Ok(None);
                }
                if !current.learners.contains(&id) {
                    return Err(ChangeError::UnknownNode(id));
                }
                let matched = self.progress.get(&id).map_or(0, |p| p.match_index);
                let last = self.log.last_index();
                // It must have acknowledged this leader's log at least once: a learner that
                // never answered (never started, unreachable) is not caught up, however short
                // the log.
                if matched == 0 || matched + PROMOTE_MAX_LAG < last {
                    return Err(ChangeError::NotCaughtUp { id, matched, last });
                }
                next.learners.remove(&id);
                next.voters.insert(id);
            }
            ConfigChange::Demote { id } => {
                if current.learners.contains(&id) {
                    return Ok(None);
                }
                if !current.voters.contains(&id) {
                    return Err(ChangeError::UnknownNode(id));
                }
                if current.voters.len() == 1 {
                    return Err(ChangeError::LastVoter);
                }
                next.voters.remove(&id);
                next.learners.insert(id);
            }
            ConfigChange::Remove { id } => {
                if !current.contains(id) {
                    return Ok(None);
                }
                if current.voters.contains(&id) && current.voters.len() == 1 {
                    return Err(ChangeError::LastVoter);
                }
                next.voters.remove(&id);
                next.learners.remove(&id);
                next.addrs.remove(&id);
                next.removed.insert(id);
            }
        }
        Ok((next != *current).then_some(next))
    }

    /// Records configuration entries among `entries` (just appended to the log).
    pub(super) fn note_configs(&mut self, entries: &[super::types::Entry]) {
        let mut changed = false;
        for entry in entries {
            if let EntryPayload::Config(m) = &entry.payload {
                self.configs.push(entry.index, m.clone());
                changed = true;
            }
        }
        if changed {
            self.membership_changed();
        }
    }

    /// The configuration in force may have changed: report it, and as leader track exactly the
    /// members of the configurations in force and committed (a removed member keeps receiving
    /// the log until its removal commits, so that it learns of it and stops campaigning).
    pub(super) fn membership_changed(&mut self) {
        let effective = self.configs.effective().clone();
        if self.reported_membership.as_ref() != Some(&effective) {
            self.reported_membership = Some(effective.clone());
            self.out.push(Action::MembershipChanged {
                membership: effective,
            });
        }
        for id in self.sync_progress() {
            self.send_append_to(id);
        }
    }

    /// As leader, tracks progress for exactly the members of the configurations in force and
    /// committed; returns the members added (probing from the next index, nothing sent yet).
    pub(super) fn sync_progress(&mut self) -> Vec<NodeId> {
        if self.role != Role::Leader {
            return Vec::new();
        }
        let me = self.cfg.id;
        let wanted: BTreeSet<NodeId> = self
            .configs
            .effective()
            .members()
            .chain(self.configs.committed(self.commit).members())
            .filter(|&id| id != me)
            .collect();
        self.progress.retain(|id, _| wanted.contains(id));
        let next = self.log.last_index() + 1;
        let mut added = Vec::new();
        for id in wanted {
            if let std::collections::btree_map::Entry::Vacant(slot) = self.progress.entry(id) {
                slot.insert(Progress::new(next));
                added.push(id);
            }
        }
        added
    }

    /// The commit index moved from `old_commit`: a configuration may have become committed. The
    /// leader then stops replicating to members it removed, and a leader that is no longer a
    /// voter steps down (dissertation §4.2.2), handing over to an up-to-date voter if there is one.
    pub(super) fn configs_committed(&mut self, old_commit: Index) {
        if self.role != Role::Leader
            || self.configs.committed_index(old_commit) == self.configs.committed_index(self.commit)
        {
            return;
        }
        self.membership_changed();
        if self.is_voter() || self.configs.effective_index() > self.commit {
            return;
        }
        let last = self.log.last_index();
        let voters = self.configs.effective().voters.clone();
        let successor = self
            .progress
            .iter()
            .filter(|(id, p)| voters.contains(id) && p.match_index == last)
            .map(|(&id, _)| id)
            .next();
        let term = self.hard.term;
        if let Some(to) = successor {
            self.send(to, super::types::Message::TimeoutNow { term });
        }
        self.become_follower(term, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(voters: &[NodeId]) -> Membership {
        Membership::with_voters(voters.iter().copied())
    }

    #[test]
    fn history_tracks_effective_committed_and_truncation() {
        let mut h = ConfigHistory::new(0, m(&[1, 2, 3]));
        h.push(5, m(&[1, 2, 3, 4]));
        h.push(9, m(&[1, 2, 4]));
        assert_eq!(h.effective(), &m(&[1, 2, 4]));
        assert_eq!(h.committed(8), &m(&[1, 2, 3, 4]));
        assert_eq!(h.committed(4), &m(&[1, 2, 3]));
        h.truncate_from(9);
        assert_eq!(h.effective(), &m(&[1, 2, 3, 4]));
        h.compact_to(6);
        assert_eq!(h.committed(0), &m(&[1, 2, 3, 4]));
        assert_eq!(h.effective_index(), 5);
    }
}
