//! The leader side of log replication: appending proposals, flow-controlled sending, handling
//! answers with fast back-off, and advancing the commit index by the Figure 8 rule (§5.3, §5.4.2).
//! Must not import actix, heed or tokio.

use super::progress::ProgressState;
use super::raft::RaftCore;
use super::types::{AppendOutcome, Entry, EntryPayload, Index, LogId, Message, NodeId};

impl RaftCore {
    /// Appends payloads to the leader's log in the current term and stages them for persisting.
    pub(super) fn append_as_leader(&mut self, payloads: Vec<EntryPayload>) -> Vec<LogId> {
        let term = self.hard.term;
        let first = self.log.last_index() + 1;
        let entries: Vec<Entry> = payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| Entry {
                term,
                index: first + i as u64,
                payload,
            })
            .collect();
        let ids = entries.iter().map(Entry::log_id).collect();
        self.stage_entries(None, entries);
        if self.quorum() == 1 {
            self.maybe_commit();
        }
        ids
    }

    /// Sends every follower what it is missing, as far as flow control allows.
    pub(super) fn broadcast_append(&mut self) {
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for peer in peers {
            self.send_appends(peer);
        }
    }

    /// Sends `peer` an append now (even an empty one), as flow control allows.
    pub(super) fn send_append_to(&mut self, peer: NodeId) {
        self.send_append(peer, true);
    }

    /// Sends `peer` append messages until it is up to date or its window is full.
    fn send_appends(&mut self, peer: NodeId) {
        while self.send_append(peer, false) {}
    }

    /// Sends one AppendEntries to `peer`. With `empty_ok` a message without entries is sent too
    /// (to probe, or to carry a new commit index). Returns whether entries were sent and more
    /// may follow.
    fn send_append(&mut self, peer: NodeId, empty_ok: bool) -> bool {
        let (max_inflight, max_entries, max_bytes) = (
            self.cfg.max_inflight,
            self.cfg.max_entries_per_msg,
            self.cfg.max_bytes_per_msg,
        );
        let Some(progress) = self.progress.get(&peer) else {
            return false;
        };
        if progress.is_paused(max_inflight) {
            return false;
        }
        let next = progress.next_index;
        let probing = progress.state == ProgressState::Probe;
        let Some(prev_term) = self.log.term_at(next - 1) else {
            // Compacted away: the follower catches up from a snapshot.
            self.request_snapshot(peer);
            return false;
        };
        let entries = self.log.slice(next, max_entries, max_bytes);
        if entries.is_empty() && !probing && !empty_ok {
            return false;
        }
        let last_sent = entries.last().map(|e| e.index);
        let msg = Message::AppendRequest {
            term: self.hard.term,
            prev: LogId::new(prev_term, next - 1),
            entries,
            commit: self.commit,
        };
        if let Some(p) = self.progress.get_mut(&peer) {
            match last_sent {
                Some(last) => p.sent_entries(last),
                None if probing => p.probe_sent = true,
                None => {}
            }
        }
        self.send(peer, msg);
        last_sent.is_some() && !probing
    }

    /// Heartbeat interval: keep followers' timers quiet, tell them the commit index, and start a
    /// read round whose confirmation renews the leader's lease.
    pub(super) fn on_heartbeat_tick(&mut self) {
        if self.role == super::types::Role::Leader {
            self.new_round();
        }
    }

    /// A follower answered an AppendEntries.
    pub(super) fn handle_append_response(&mut self, from: NodeId, outcome: AppendOutcome) {
        match outcome {
            AppendOutcome::Success { match_index } => {
                let Some(p) = self.progress.get_mut(&from) else {
                    return;
                };
                if match_index > self.log.last_index() {
                    return; // cannot acknowledge entries this leader never had
                }
                if p.acknowledge(match_index) {
                    self.maybe_commit();
                }
                self.send_appends(from);
                if self.transferee == Some(from) {
                    self.nudge_transfer(from);
                }
            }
            AppendOutcome::Conflict {
                rejected_prev,
                hint,
            } => {
                // Skip the follower's whole conflicting term in one step (fast back-off).
                let probe_from = if hint.term > 0 {
                    self.log.last_at_or_before(hint.index, hint.term).index
                } else {
                    hint.index
                };
                let next = rejected_prev.min(probe_from + 1);
                let Some(p) = self.progress.get_mut(&from) else {
                    return;
                };
                if p.reject(rejected_prev, next) {
                    self.send_append(from, true);
                }
            }
        }
    }

    /// A follower answered a heartbeat: it is alive, so a paused probe may go again, and a full
    /// pipeline window (whose messages may all have been lost) gets one slot back. The append
    /// that follows is sent even when empty: if entries were lost, its rejection switches the
    /// follower to probing from where the logs really agree (as etcd-raft does).
    pub(super) fn handle_heartbeat_response(&mut self, from: NodeId, ctx: u64, applied: Index) {
        if let Some(p) = self.progress.get_mut(&from) {
            p.applied = p.applied.max(applied);
        }
        self.read_acknowledged(from, ctx);
        let last = self.log.last_index();
        let max_inflight = self.cfg.max_inflight;
        let Some(p) = self.progress.get_mut(&from) else {
            return;
        };
        p.probe_sent = false;
        if p.state == ProgressState::Replicate && p.inflight.len() >= max_inflight {
            p.inflight.pop_front();
        }
        if p.match_index < last {
            self.send_append(from, true);
        }
    }

    /// Commits the highest index stored on a quorum, if it belongs to the current term: entries
    /// of earlier terms commit only indirectly (the Figure 8 rule, §5.4.2). The leader counts its
    /// own log only as far as it is durable, and only while it is a voter; learners never count.
    pub(super) fn maybe_commit(&mut self) {
        let voters = &self.configs.effective().voters;
        let mut matched: Vec<Index> = self
            .progress
            .iter()
            .filter(|(id, _)| voters.contains(id))
            .map(|(_, p)| p.match_index)
            .collect();
        if voters.contains(&self.cfg.id) {
            matched.push(self.stable_last);
        }
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&candidate) = matched.get(self.quorum() - 1) else {
            return;
        };
        if candidate > self.commit && self.log.term_at(candidate) == Some(self.hard.term) {
            self.commit_to(candidate);
            // Tell up-to-date followers at once rather than at the next heartbeat.
            let peers: Vec<NodeId> = self.progress.keys().copied().collect();
            for peer in peers {
                let up_to_date = self.progress.get(&peer).is_some_and(|p| {
                    p.state == ProgressState::Replicate && p.next_index > self.log.last_index()
                });
                if up_to_date {
                    self.send_append(peer, true);
                }
            }
        }
    }
}
