//! Snapshots in the core (§7): compacting the in-memory log, sending a snapshot to a follower
//! whose next entry was compacted away, and installing one received from the leader. The bytes
//! never pass through the core: the runtime streams, stores and restores them, and tells the core
//! with `Event::SnapshotReceived` / `Event::SnapshotSent`. Must not import actix, heed or tokio.

use super::progress::ProgressState;
use super::raft::RaftCore;
use super::types::{AppendOutcome, Index, LogId, Message, NodeId, Role, SnapshotMeta, Term};

impl RaftCore {
    /// Drops in-memory entries up to `upto` (a snapshot covers them). Only applied entries are
    /// dropped: `upto` is capped at the index last handed to the state machine and at the
    /// durable log. Returns the new base of the log when entries were dropped: the runtime
    /// purges the same entries from disk, after every `Persist` issued so far.
    pub fn compact(&mut self, upto: Index) -> Option<LogId> {
        let upto = upto.min(self.apply_sent).min(self.stable_last);
        if upto <= self.log.base().index {
            return None;
        }
        self.log.compact_to(upto);
        self.configs.compact_to(upto);
        Some(self.log.base())
    }

    /// The leader needs to send `peer` entries it no longer holds: switch to snapshot mode and
    /// ask the runtime to stream its latest snapshot.
    pub(super) fn request_snapshot(&mut self, peer: NodeId) {
        let Some(p) = self.progress.get_mut(&peer) else {
            return;
        };
        if p.state == ProgressState::Snapshot {
            return;
        }
        p.become_snapshot();
        self.out
            .push(super::event::Action::SendSnapshot { to: peer });
    }

    /// A snapshot transfer to `to` ended.
    pub(super) fn on_snapshot_sent(&mut self, to: NodeId, last: Option<LogId>) {
        if self.role != Role::Leader {
            return;
        }
        let Some(p) = self.progress.get_mut(&to) else {
            return;
        };
        if p.state != ProgressState::Snapshot {
            return;
        }
        // Probe from after the snapshot (or from the last known match if it failed), once the
        // follower answers its next heartbeat (etcd-raft does the same).
        p.become_probe();
        if let Some(last) = last {
            p.next_index = p.next_index.max(last.index + 1);
        }
        p.probe_sent = true;
    }

    /// The runtime received a whole snapshot from `from`, leader of `term`.
    pub(super) fn on_snapshot_received(&mut self, from: NodeId, term: Term, meta: SnapshotMeta) {
        if from == self.cfg.id {
            return;
        }
        if term < self.hard.term {
            // A deposed leader: tell it the current term.
            let term = self.hard.term;
            let reply = Message::HeartbeatResponse {
                term,
                ctx: 0,
                applied: 0,
            };
            self.send(from, reply);
            return;
        }
        if term > self.hard.term || self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(term, Some(from));
        } else {
            self.leader_lease = true;
            self.arm_election();
        }
        self.install_snapshot(from, meta);
    }

    /// Installs `meta` unless this node already holds what it covers.
    fn install_snapshot(&mut self, from: NodeId, meta: SnapshotMeta) {
        let term = self.hard.term;
        let last = meta.last;
        if last.index <= self.commit {
            let outcome = AppendOutcome::Success {
                match_index: self.commit,
            };
            self.send(from, Message::AppendResponse { term, outcome });
            return;
        }
        if self.log.matches(last) {
            // The log already holds the snapshot's last entry: keep it, and the entries after.
            self.commit_to(last.index);
        } else {
            self.log.reset_to(last);
            self.configs.reset(last.index, meta.membership.clone());
            self.membership_changed();
            self.unflushed_entries.clear();
            self.unflushed_truncate = None;
            self.stable_last = self.stable_last.min(last.index);
            for (_, pending_last) in self.io_pending.iter_mut() {
                *pending_last = (*pending_last).min(last.index);
            }
            self.commit = last.index;
            self.apply_sent = last.index;
            self.unflushed_install = Some(meta);
        }
        self.leader_commit_seen = self.leader_commit_seen.max(last.index);
        let outcome = AppendOutcome::Success {
            match_index: last.index,
        };
        self.send(from, Message::AppendResponse { term, outcome });
    }
}
