//! `RaftCore`: the deterministic Raft state machine of one node.
//!
//! Owns the term, vote, role, in-memory log, commit index and (when leader) follower progress.
//! Input arrives through `step`/`propose`; output is a list of `Action`s the runtime carries out.
//! Replies that depend on durable state are held back until the `Persist` they depend on is
//! reported complete (etcd's `msgsAfterAppend`). This module must not import actix, heed, tokio,
//! a clock or a socket: the same inputs always give the same outputs.

use std::collections::{BTreeMap, VecDeque};

use super::config::CoreConfig;
use super::event::{Action, Event};
use super::log::RaftLog;
use super::membership::ConfigHistory;
use super::progress::Progress;
use super::types::{
    Entry, EntryPayload, Envelope, HardState, Index, LogId, Membership, Message, NodeId, Role,
    SnapshotMeta, Term,
};

/// Rejection of a proposal made to a node that is not the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotLeader {
    /// The leader this node knows of in its current term, if any.
    pub leader: Option<NodeId>,
}

/// What the core recovered from storage when the node starts.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    /// Durable term and vote.
    pub hard_state: HardState,
    /// Durable log entries.
    pub log: RaftLog,
    /// Last index the state machine applied durably (never above the log's last index).
    pub applied: Index,
    /// The latest snapshot, if any: the log's base is at or below its last entry, and its
    /// configuration is the one in force at that entry (the bootstrap configuration from
    /// `CoreConfig::initial` applies when there is none).
    pub snapshot: Option<SnapshotMeta>,
}

/// The Raft protocol state of one node (Figure 2 of the paper, plus pre-vote and check-quorum).
#[derive(Debug)]
pub struct RaftCore {
    pub(super) cfg: CoreConfig,
    /// Term and vote as the core sees them; may be ahead of disk until the next persist.
    pub(super) hard: HardState,
    /// `hard` changed since the last `Persist` was issued.
    pub(super) hard_dirty: bool,
    pub(super) role: Role,
    pub(super) leader: Option<NodeId>,
    pub(super) log: RaftLog,
    /// Highest index known committed (§5.3). Never decreases.
    pub(super) commit: Index,
    /// Last index handed to the state machine in an `Apply`. `apply_sent <= commit`.
    pub(super) apply_sent: Index,
    /// Largest index whose whole prefix on disk equals the in-memory log.
    pub(super) stable_last: Index,
    /// Sequence number the next `Persist` gets.
    pub(super) io_next: u64,
    /// Latest `Persist` reported durable.
    pub(super) io_durable: u64,
    /// The latest `Persist` that carried a hard state (term, vote) change.
    pub(super) io_hard: u64,
    /// Issued persists not yet durable: `(io_seq, stable_last once it is durable)`.
    pub(super) io_pending: VecDeque<(u64, Index)>,
    /// Log changes made during the current step, written by one `Persist` at its end.
    pub(super) unflushed_truncate: Option<Index>,
    pub(super) unflushed_entries: Vec<Entry>,
    /// Messages that may leave only once `Persist` `io_seq` is durable.
    pub(super) deferred: VecDeque<(u64, Envelope)>,
    /// Epoch of the election timer currently armed.
    pub(super) election_epoch: u64,
    /// Votes (or pre-votes) received in the current campaign.
    pub(super) votes: BTreeMap<NodeId, bool>,
    /// Followers' progress, when leader.
    pub(super) progress: BTreeMap<NodeId, Progress>,
    /// Actions produced since the last `take_actions`.
    pub(super) out: Vec<Action>,
    /// A leader was heard from within the minimum election timeout (check-quorum lease): vote
    /// requests are ignored meanwhile.
    pub(super) leader_lease: bool,
    /// Highest index the state machine reported applied (sent to the leader in heartbeats).
    pub(super) applied_report: Index,
    /// Highest commit index a leader of this node's terms has told it about (uncapped).
    pub(super) leader_commit_seen: Index,
    /// Leadership transfer in progress: its target (proposals are refused meanwhile).
    pub(super) transferee: Option<NodeId>,
    /// Linearizable reads in flight.
    pub(super) reads: super::read_index::ReadState,
    /// Configurations in the log and the one in force.
    pub(super) configs: ConfigHistory,
    /// Last configuration reported through `MembershipChanged`.
    pub(super) reported_membership: Option<Membership>,
    /// A snapshot received from the leader replaces the log in this step's `Persist`.
    pub(super) unflushed_install: Option<SnapshotMeta>,
    /// The state machine must be restored from this snapshot once persist `io_seq` is durable.
    pub(super) pending_restore: Option<(u64, SnapshotMeta)>,
    /// Last `(role, term, leader)` reported through `RoleChanged`.
    reported: Option<(Role, Term, Option<NodeId>)>,
}

impl RaftCore {
    /// A follower restarting from `recovered` state. Call `start` before anything else.
    pub fn new(cfg: CoreConfig, recovered: Recovered) -> Self {
        let stable_last = recovered.log.last_index();
        let applied = recovered.applied.min(stable_last);
        let mut configs = match &recovered.snapshot {
            Some(snap) => ConfigHistory::new(snap.last.index, snap.membership.clone()),
            None => ConfigHistory::new(0, cfg.initial.clone()),
        };
        let from = recovered.snapshot.as_ref().map_or(0, |s| s.last.index);
        for entry in recovered.log.range(from + 1, stable_last) {
            if let EntryPayload::Config(m) = entry.payload {
                configs.push(entry.index, m);
            }
        }
        Self {
            cfg,
            hard: recovered.hard_state,
            hard_dirty: false,
            role: Role::Follower,
            leader: None,
            log: recovered.log,
            commit: applied,
            apply_sent: applied,
            stable_last,
            io_next: 1,
            io_durable: 0,
            io_hard: 0,
            io_pending: VecDeque::new(),
            unflushed_truncate: None,
            unflushed_entries: Vec::new(),
            deferred: VecDeque::new(),
            election_epoch: 0,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            out: Vec::new(),
            leader_lease: false,
            applied_report: applied,
            leader_commit_seen: applied,
            transferee: None,
            reads: Default::default(),
            configs,
            reported_membership: None,
            unflushed_install: None,
            pending_restore: None,
            reported: None,
        }
    }

    /// Arms the first election timer and reports the initial role.
    pub fn start(&mut self) -> Vec<Action> {
        self.membership_changed();
        self.arm_election();
        self.finish_step()
    }

    /// Feeds one event to the core and returns what the runtime must do.
    pub fn step(&mut self, event: Event) -> Vec<Action> {
        match event {
            Event::ElectionTimeout { epoch } => self.on_election_timeout(epoch),
            Event::LeaseExpired { epoch } => {
                if epoch == self.election_epoch {
                    self.leader_lease = false;
                }
            }
            Event::HeartbeatTick => self.on_heartbeat_tick(),
            Event::Receive(envelope) => self.on_receive(envelope),
            Event::Persisted { io_seq } => self.on_persisted(io_seq),
            Event::Applied { index } => self.applied_report = self.applied_report.max(index),
            Event::SnapshotReceived { from, term, meta } => {
                self.on_snapshot_received(from, term, meta)
            }
            Event::SnapshotSent { to, last } => self.on_snapshot_sent(to, last),
        }
        self.finish_step()
    }

    /// Appends commands to the log (leader only) and starts replicating them.
    ///
    /// On success returns the id of each new entry and the actions to carry out; the entries are
    /// not committed yet. On a follower nothing changes and the known leader is returned.
    pub fn propose(
        &mut self,
        commands: Vec<bytes::Bytes>,
    ) -> Result<(Vec<LogId>, Vec<Action>), NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            });
        }
        if self.transferee.is_some() {
            // Handing over: no new writes until the transfer ends (clients retry).
            return Err(NotLeader { leader: None });
        }
        let ids = self.append_as_leader(
            commands
                .into_iter()
                .map(super::types::EntryPayload::Command)
                .collect(),
        );
        self.broadcast_append();
        Ok((ids, self.finish_step()))
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.cfg.id
    }
    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// Current term.
    pub fn term(&self) -> Term {
        self.hard.term
    }
    /// Vote cast in the current term.
    pub fn voted_for(&self) -> Option<NodeId> {
        self.hard.voted_for
    }
    /// Leader known in the current term.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    /// Commit index.
    pub fn commit_index(&self) -> Index {
        self.commit
    }
    /// Last entry of the in-memory log.
    pub fn last_log_id(&self) -> LogId {
        self.log.last_id()
    }
    /// Last index durable on this node's disk.
    pub fn stable_index(&self) -> Index {
        self.stable_last
    }
    /// Last index handed to the state machine.
    pub fn apply_sent(&self) -> Index {
        self.apply_sent
    }
    /// The in-memory log (read-only).
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    /// Epoch of the election timer currently armed.
    pub fn election_epoch(&self) -> u64 {
        self.election_epoch
    }
    /// The protocol configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }
    /// `(peer, match_index, next_index)` of each follower when leader.
    pub fn followers(&self) -> Vec<(NodeId, Index, Index)> {
        self.progress
            .iter()
            .map(|(&id, p)| (id, p.match_index, p.next_index))
            .collect()
    }
    /// The applied index each follower last reported, when leader.
    pub fn followers_applied(&self) -> Vec<(NodeId, Index)> {
        self.progress
            .iter()
            .map(|(&id, p)| (id, p.applied))
            .collect()
    }
    /// The highest commit index a leader has told this node about (its own commit on a leader).
    pub fn leader_commit(&self) -> Index {
        if self.role == Role::Leader {
            self.commit
        } else {
            self.leader_commit_seen.max(self.commit)
        }
    }

    // ----- role transitions -----

    /// Follows `leader` (if known) in `term`, which must not be below the current term.
    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        self.fail_reads();
        self.transferee = None;
        self.set_term(term);
        self.role = Role::Follower;
        self.leader = leader;
        self.leader_lease = leader.is_some();
        self.votes.clear();
        self.progress.clear();
        self.arm_election();
    }

    /// Moves to `term`, forgetting the vote when the term grows.
    pub(super) fn set_term(&mut self, term: Term) {
        debug_assert!(term >= self.hard.term);
        if term > self.hard.term {
            self.hard = HardState {
                term,
                voted_for: None,
            };
            self.hard_dirty = true;
            self.leader = None;
        }
    }

    /// Starts a new election timer epoch; earlier timeouts become stale.
    pub(super) fn arm_election(&mut self) {
        self.election_epoch += 1;
        self.out.push(Action::ArmElection {
            epoch: self.election_epoch,
        });
    }

    // ----- durability bookkeeping -----

    /// Records a log change made in this step; it is persisted at the end of the step.
    pub(super) fn stage_entries(&mut self, truncate_from: Option<Index>, entries: Vec<Entry>) {
        if let Some(t) = truncate_from {
            self.log.truncate_from(t);
            if self.configs.effective_index() >= t {
                self.configs.truncate_from(t);
                self.membership_changed();
            }
            self.unflushed_entries.retain(|e| e.index < t);
            self.unflushed_truncate = Some(self.unflushed_truncate.map_or(t, |u| u.min(t)));
            let keep = t.saturating_sub(1);
            self.stable_last = self.stable_last.min(keep);
            for (_, last) in self.io_pending.iter_mut() {
                *last = (*last).min(keep);
            }
        }
        self.log.append(entries.clone());
        self.note_configs(&entries);
        self.unflushed_entries.extend(entries);
    }

    pub(super) fn has_unflushed(&self) -> bool {
        self.hard_dirty
            || self.unflushed_truncate.is_some()
            || !self.unflushed_entries.is_empty()
            || self.unflushed_install.is_some()
    }

    /// Issues one `Persist` for everything changed during this step.
    fn flush(&mut self) {
        if !self.has_unflushed() {
            return;
        }
        let io_seq = self.io_next;
        self.io_next += 1;
        self.io_pending.push_back((io_seq, self.log.last_index()));
        if self.hard_dirty {
            self.io_hard = io_seq;
        }
        let install = self.unflushed_install.take();
        if let Some(meta) = &install {
            self.pending_restore = Some((io_seq, meta.clone()));
        }
        self.out.push(Action::Persist {
            io_seq,
            hard_state: self.hard_dirty.then_some(self.hard),
            install,
            truncate_from: self.unflushed_truncate.take(),
            entries: std::mem::take(&mut self.unflushed_entries),
        });
        self.hard_dirty = false;
    }

    /// Sends a message. Leader traffic goes out at once (appends, heartbeats, and the
    /// `TimeoutNow` of a transfer, which asserts nothing about this node's disk: a leader whose
    /// disk refuses writes can still hand over). Heartbeat answers and ReadIndex traffic assert
    /// only this node's term: they wait for the hard state alone, never behind an fsync of
    /// entries. Every other message (votes, append answers) states something about this node's
    /// durable state, so it waits until all persists issued so far, including this step's, are
    /// durable.
    pub(super) fn send(&mut self, to: NodeId, msg: Message) {
        let envelope = Envelope {
            from: self.cfg.id,
            to,
            msg,
        };
        let leader_traffic = matches!(
            envelope.msg,
            Message::AppendRequest { .. } | Message::Heartbeat { .. } | Message::TimeoutNow { .. }
        );
        let term_only = matches!(
            envelope.msg,
            Message::HeartbeatResponse { .. }
                | Message::ReadIndexRequest { .. }
                | Message::ReadIndexResponse { .. }
        );
        let needed = if term_only {
            if self.hard_dirty {
                self.io_next
            } else {
                self.io_hard
            }
        } else if self.has_unflushed() {
            self.io_next
        } else {
            self.io_next - 1
        };
        if leader_traffic || needed <= self.io_durable {
            self.out.push(Action::Send(envelope));
        } else {
            self.deferred.push_back((needed, envelope));
        }
    }

    fn on_persisted(&mut self, io_seq: u64) {
        if io_seq <= self.io_durable || io_seq >= self.io_next {
            return;
        }
        self.io_durable = io_seq;
        while let Some(&(seq, last)) = self.io_pending.front() {
            if seq > io_seq {
                break;
            }
            self.stable_last = last;
            self.io_pending.pop_front();
        }
        if self
            .pending_restore
            .as_ref()
            .is_some_and(|(seq, _)| *seq <= io_seq)
        {
            if let Some((_, meta)) = self.pending_restore.take() {
                self.out.push(Action::Restore { meta });
            }
        }
        while self.deferred.front().is_some_and(|(seq, _)| *seq <= io_seq) {
            if let Some((_, envelope)) = self.deferred.pop_front() {
                self.out.push(Action::Send(envelope));
            }
        }
        if self.role == Role::Leader {
            self.maybe_commit();
        }
        self.maybe_apply();
    }

    // ----- commit and apply -----

    /// Raises the commit index to `index` (never lowers it) and applies what became ready.
    pub(super) fn commit_to(&mut self, index: Index) {
        if index > self.commit {
            let old = self.commit;
            self.commit = index;
            self.maybe_apply();
            self.reads_after_commit();
            self.configs_committed(old);
        }
    }

    /// Hands committed entries that are durable here to the state machine, in order.
    pub(super) fn maybe_apply(&mut self) {
        let target = self.commit.min(self.stable_last);
        if target > self.apply_sent {
            let entries = self.log.range(self.apply_sent + 1, target);
            self.apply_sent = target;
            self.out.push(Action::Apply { entries });
        }
    }

    /// Persists what the step changed, reports a role change, and hands over the actions.
    pub(super) fn finish_step(&mut self) -> Vec<Action> {
        self.flush();
        let now = (self.role, self.hard.term, self.leader);
        if self.reported != Some(now) {
            self.reported = Some(now);
            self.out.push(Action::RoleChanged {
                role: now.0,
                term: now.1,
                leader: now.2,
            });
        }
        std::mem::take(&mut self.out)
    }
}
