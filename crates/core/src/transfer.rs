//! Leadership transfer (dissertation §3.10): the leader stops accepting proposals, brings the
//! target's log up to date, and sends it `TimeoutNow`; the target campaigns at once, and voters
//! that still hear from the old leader consider its votes anyway (`transfer` flag). A transfer
//! that has not completed within an election timeout is abandoned. Must not import actix, heed
//! or tokio.

use super::raft::RaftCore;
use super::types::{Message, NodeId, Role};

/// Why a transfer cannot start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferError {
    /// This node is not the leader (the known leader, if any).
    NotLeader(Option<NodeId>),
    /// The target is not a voter of the cluster.
    UnknownTarget(NodeId),
    /// There is no other voter to hand leadership to.
    NoCandidate,
}

impl RaftCore {
    /// Starts handing leadership to `to`, or to the most up-to-date other voter. Returns the
    /// target and the actions; proposals are refused until the transfer ends (the target won,
    /// another node won, or an election timeout passed).
    pub fn transfer_leader(
        &mut self,
        to: Option<NodeId>,
    ) -> Result<(NodeId, Vec<super::event::Action>), TransferError> {
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader(self.leader));
        }
        let target = match to {
            Some(id) if id == self.cfg.id => return Ok((id, self.finish_step())),
            Some(id) if !self.configs.effective().voters.contains(&id) => {
                return Err(TransferError::UnknownTarget(id))
            }
            Some(id) => id,
            None => self
                .progress
                .iter()
                .filter(|(id, _)| self.configs.effective().voters.contains(id))
                .max_by_key(|(&id, p)| (p.match_index, std::cmp::Reverse(id)))
                .map(|(&id, _)| id)
                .ok_or(TransferError::NoCandidate)?,
        };
        self.transferee = Some(target);
        self.nudge_transfer(target);
        Ok((target, self.finish_step()))
    }

    /// The transfer in progress, if any.
    pub fn transferring_to(&self) -> Option<NodeId> {
        self.transferee
    }

    /// Sends `TimeoutNow` once the target holds the whole log, else more entries.
    pub(super) fn nudge_transfer(&mut self, target: NodeId) {
        if self.transferee != Some(target) {
            return;
        }
        let caught_up = self
            .progress
            .get(&target)
            .is_some_and(|p| p.match_index == self.log.last_index());
        if caught_up {
            let term = self.hard.term;
            self.send(target, Message::TimeoutNow { term });
        } else {
            self.send_append_to(target);
        }
    }

    /// A leader's `TimeoutNow`: campaign now, without pre-vote, telling voters it is a transfer.
    pub(super) fn handle_timeout_now(&mut self, from: NodeId) {
        if self.leader == Some(from) && self.is_voter() {
            self.campaign_for_transfer();
        }
    }
}
