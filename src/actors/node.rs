//! `RaftNode`: the hub actor. Owns the pure core, turns mailbox messages into core events and
//! carries out the core's actions by messaging the other actors. It never waits for storage or
//! the network inside a handler, so timers and heartbeats keep flowing while disks fsync.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ActorContext, Addr, AsyncContext, Context, Handler, Recipient};
use futures::channel::oneshot;

use crate::core::{Action, AppendOutcome, Event, Index, Message, NodeId, RaftCore, Role, Term};
use crate::messages::applier::Apply;
use crate::messages::log_store::Persist;
use crate::messages::node::*;
use crate::messages::peer_link::SendToPeer;
use crate::messages::replicator::{Acknowledged, Heard, Replicate};
use crate::messages::snapshot::{Purge, RestoreSnapshot, TakeSnapshot};
use crate::messages::timer::{ArmElection, SetHeartbeat};
use crate::metrics::NodeMetrics;
use crate::transport::{PeerLink, PeerLinkConfig};

use super::replicator::Replicator;
use super::timer::ElectionTimer;

pub(super) type Waiter = oneshot::Sender<Result<WriteResult, ClientError>>;

/// Everything a node actor is wired to.
pub struct NodeParts {
    /// The protocol state, recovered from storage.
    pub core: RaftCore,
    /// The node's timer.
    pub timer: Addr<ElectionTimer>,
    /// The log store.
    pub log_store: Recipient<Persist>,
    /// The applier.
    pub applier: Recipient<Apply>,
    /// The applier, for snapshots.
    pub take_snapshot: Recipient<TakeSnapshot>,
    /// The applier, for restores.
    pub restore: Recipient<RestoreSnapshot>,
    /// The log store, for compaction.
    pub purge: Recipient<Purge>,
    /// Snapshot state.
    pub snapshots: super::node_snapshot::Snapshots,
    /// One link per peer.
    pub links: BTreeMap<NodeId, Addr<PeerLink>>,
    /// Settings for links to new members (`peer_id` and `peer_addr` are replaced).
    pub link_template: PeerLinkConfig,
    /// Peer address of every member this node knows of.
    pub peer_addrs: BTreeMap<NodeId, String>,
    /// Longest election timeout: a follower silent for longer counts as unreachable.
    pub election_timeout_max: Duration,
    /// How long a quorum-confirmed round lets the leader serve reads locally: the minimum
    /// election timeout less the clock-drift bound.
    pub lease_duration: Duration,
    /// Leases need check-quorum (followers ignoring campaigns while they hear a leader).
    pub lease_enabled: bool,
    /// A follower more entries than this behind the leader's commit is SYNCING.
    pub syncing_lag: u64,
    /// A durable write slower than this makes the node DEGRADED for a while.
    pub slow_disk: Duration,
    /// The state machine's applied index at start.
    pub applied: Index,
    /// This node's advertised HTTP address.
    pub http_addr: String,
    /// Longest wait for a proposal to commit and apply.
    pub proposal_timeout: Duration,
    /// Shared counters.
    pub metrics: Arc<NodeMetrics>,
    /// Told, with the failure reason if any, when the node stops.
    pub on_stop: Option<oneshot::Sender<Option<String>>>,
    /// Arbiters (threads) of the log store and applier, stopped and joined with the node, so
    /// that their LMDB envs are closed before `on_stop` fires.
    pub arbiters: Vec<actix::Arbiter>,
    /// The data directory's lock, released once the arbiters above have stopped (their LMDB
    /// envs closed) and before `on_stop` fires, so a restart in the same process finds it free.
    pub data_dir_lock: Option<crate::storage::DataDirLock>,
    /// Peer listener task, aborted with the node.
    pub listener: Option<tokio::task::JoinHandle<()>>,
}

/// The node actor.
pub struct RaftNode {
    pub(super) id: NodeId,
    pub(super) parts: NodeParts,
    pub(super) replicators: BTreeMap<NodeId, Addr<Replicator>>,
    pub(super) waiters: BTreeMap<Index, (Term, Ack, Waiter)>,
    /// Client commands waiting for the next `ProposeBatch`.
    pub(super) proposals: Vec<(bytes::Bytes, Ack, Waiter)>,
    /// Writes and reads waiting for more than commit and apply here.
    pub(super) acks: super::node_acks::Acks,
    /// Leadership transfers waiting for a new leader.
    pub(super) transfers: Vec<super::node_transfer::TransferWaiter>,
    /// What the health state is computed from.
    pub(super) health: super::node_health::HealthSignals,
    /// Linearizable reads in progress.
    pub(super) reads: super::node_reads::Reads,
    pub(super) applied: Index,
    pub(super) peer_http: BTreeMap<NodeId, String>,
    subscribers: Vec<Recipient<RoleChange>>,
    pub(super) blocked: BTreeSet<NodeId>,
    /// Messages refused from non-members (counted, logged at most every few seconds per peer).
    pub(super) refusals: super::node_refusals::Refusals,
    last_role: Option<(Role, Term)>,
    last_leader: Option<NodeId>,
    failure: Option<String>,
    /// This actor's address (set when it starts).
    pub(super) me: Option<Addr<RaftNode>>,
}

impl RaftNode {
    /// A node from its parts; start it with `RaftNode::create` so that the parts can be given the
    /// node's address first.
    pub fn new(parts: NodeParts) -> Self {
        Self {
            id: parts.core.id(),
            applied: parts.applied,
            parts,
            replicators: BTreeMap::new(),
            waiters: BTreeMap::new(),
            proposals: Vec::new(),
            acks: Default::default(),
            health: Default::default(),
            transfers: Vec::new(),
            reads: Default::default(),
            refusals: Default::default(),
            peer_http: BTreeMap::new(),
            subscribers: Vec::new(),
            blocked: BTreeSet::new(),
            last_role: None,
            last_leader: None,
            failure: None,
            me: None,
        }
    }

    /// A span carrying the node id and the current term, for every handler's logs.
    pub(super) fn span(&self) -> tracing::span::EnteredSpan {
        tracing::info_span!("raft", node = self.id, term = self.parts.core.term()).entered()
    }

    fn step(&mut self, event: Event) {
        let actions = self.parts.core.step(event);
        self.execute(actions);
    }

    pub(super) fn execute(&mut self, actions: Vec<Action>) {
        self.note_rounds();
        for action in actions {
            match action {
                Action::Persist {
                    io_seq,
                    hard_state,
                    install,
                    truncate_from,
                    entries,
                } => {
                    if let Some(meta) = &install {
                        self.snapshot_installing(meta);
                    }
                    self.parts.log_store.do_send(Persist {
                        io_seq,
                        hard_state,
                        install,
                        truncate_from,
                        entries,
                    });
                }
                Action::Restore { meta } => self.restore_snapshot(meta),
                Action::SendSnapshot { to } => self.send_snapshot(to),
                Action::MembershipChanged { membership } => self.membership_changed(membership),
                Action::Send(envelope) => self.send(envelope),
                Action::Apply { entries } => {
                    let bytes = entries.iter().map(|e| e.approx_size() as u64).sum();
                    let count = entries.len() as u64;
                    self.parts.applier.do_send(Apply { entries });
                    self.count_applied(count, bytes);
                }
                Action::ArmElection { epoch } => self.parts.timer.do_send(ArmElection { epoch }),
                Action::RoleChanged { role, term, leader } => self.role_changed(role, term, leader),
                Action::ReadReady { id, index } => self.read_ready(id, index),
                Action::QuorumConfirmed { round } => self.lease_confirmed(round),
                Action::ReadsFailed { ids } => self.reads_failed(ids),
            }
        }
        self.check_durable();
        self.check_everywhere();
    }

    fn send(&mut self, envelope: crate::core::Envelope) {
        if self.blocked.contains(&envelope.to) {
            return;
        }
        NodeMetrics::bump(&self.parts.metrics.messages_out);
        let leader_traffic = matches!(
            envelope.msg,
            Message::AppendRequest { .. } | Message::Heartbeat { .. }
        );
        if leader_traffic {
            if let Some(replicator) = self.replicators.get(&envelope.to) {
                replicator.do_send(Replicate(envelope));
                return;
            }
        }
        if let Some(link) = self.link_to(envelope.to) {
            link.do_send(SendToPeer(envelope));
        }
    }

    fn role_changed(&mut self, role: Role, term: Term, leader: Option<NodeId>) {
        if self.last_role != Some((role, term)) {
            tracing::info!("node {} became {} at term {}", self.id, role, term);
        }
        if leader.is_some() && leader != self.last_leader {
            NodeMetrics::bump(&self.parts.metrics.leader_changes);
        }
        self.last_leader = leader;
        self.leader_known(leader);
        self.transfers_settled(leader);
        if role != Role::Leader || self.last_role.map(|(_, t)| t) != Some(term) {
            self.lease_lost();
        }
        if role == Role::Leader && self.last_role != Some((role, term)) {
            self.health.leader_since = Some(std::time::Instant::now());
        }
        self.last_role = Some((role, term));
        if role != Role::Leader && !self.parts.core.membership().contains(self.id) {
            self.writes_undecidable();
        }
        self.parts.timer.do_send(SetHeartbeat(role == Role::Leader));
        self.replicators.clear(); // dropping the addresses stops the old term's replicators
        if role == Role::Leader {
            self.start_replicators();
        }
        let change = RoleChange {
            node: self.id,
            role,
            term,
            leader,
        };
        self.subscribers.retain(|s| s.connected());
        for s in &self.subscribers {
            s.do_send(change);
        }
    }

    /// This node is no longer a member and does not lead (a leader that removed itself steps
    /// down once its removal commits): nobody replicates to it any more, so the writes it
    /// proposed past its commit index will never be decided here, although the remaining
    /// members may still commit them. Answer them now rather than at the proposal timeout.
    fn writes_undecidable(&mut self) {
        let commit = self.parts.core.commit_index();
        let undecided = self.waiters.split_off(&(commit + 1));
        for (_, (_, _, waiter)) in undecided {
            NodeMetrics::bump(&self.parts.metrics.proposals_failed);
            let _ = waiter.send(Err(ClientError::OutcomeUnknown));
        }
    }

    pub(super) fn leader_addr(&self, leader: Option<NodeId>) -> Option<String> {
        let leader = leader?;
        if leader == self.id {
            return Some(self.parts.http_addr.clone());
        }
        self.peer_http.get(&leader).cloned()
    }

    fn status(&self) -> NodeStatus {
        let core = &self.parts.core;
        let last = core.last_log_id();
        let lag = core.leader_commit().saturating_sub(self.applied);
        let peers = core
            .followers()
            .into_iter()
            .map(|(id, match_index, next_index)| {
                let lag = last.index.saturating_sub(match_index);
                (
                    id,
                    PeerProgress {
                        match_index,
                        next_index,
                        lag,
                    },
                )
            })
            .collect();
        NodeStatus {
            id: self.id,
            role: core.role(),
            term: core.term(),
            leader: core.leader(),
            leader_addr: self.leader_addr(core.leader()),
            commit: core.commit_index(),
            leader_commit: core.leader_commit(),
            applied: self.applied,
            lag,
            health: self.health(lag),
            last_log_index: last.index,
            last_log_term: last.term,
            members: core.membership().voters.iter().copied().collect(),
            learners: core.membership().learners.iter().copied().collect(),
            peers,
        }
    }

    fn fail(&mut self, reason: String, ctx: &mut Context<Self>) {
        tracing::error!(node = self.id, "stopping node: {reason}");
        self.failure = Some(reason);
        ctx.stop();
    }
}

impl Actor for RaftNode {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1024);
        self.me = Some(ctx.address());
        let actions = self.parts.core.start();
        self.execute(actions);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        let reason = self
            .failure
            .clone()
            .unwrap_or_else(|| "node stopped".to_string());
        for (_, (_, _, waiter)) in std::mem::take(&mut self.waiters) {
            let _ = waiter.send(Err(ClientError::Unavailable(reason.clone())));
        }
        for (_, _, waiter) in std::mem::take(&mut self.proposals) {
            let _ = waiter.send(Err(ClientError::Unavailable(reason.clone())));
        }
        self.acks_stopped(&reason);
        self.parts.snapshots.senders.clear();
        for w in std::mem::take(&mut self.parts.snapshots.waiters) {
            let _ = w.send(Err(ClientError::Unavailable(reason.clone())));
        }
        self.reads_stopped(&reason);
        self.replicators.clear();
        self.parts.timer.do_send(SetHeartbeat(false));
        if let Some(listener) = self.parts.listener.take() {
            listener.abort();
        }
        // Stop the storage threads, wait until they exited (dropping their LMDB envs), and only
        // then report the node as stopped: a caller may reopen the data dir right away.
        let arbiters = std::mem::take(&mut self.parts.arbiters);
        let data_dir_lock = self.parts.data_dir_lock.take();
        let on_stop = self.parts.on_stop.take();
        let failure = self.failure.clone();
        let joiner = std::thread::Builder::new()
            .name("raftix-stop".into())
            .spawn(move || {
                for arbiter in arbiters {
                    arbiter.stop();
                    let _ = arbiter.join();
                }
                drop(data_dir_lock);
                if let Some(tx) = on_stop {
                    let _ = tx.send(failure);
                }
            });
        if let Err(err) = joiner {
            tracing::error!(
                node = self.id,
                "cannot wait for storage threads to stop: {err}"
            );
        }
        tracing::info!("node {} stopped", self.id);
    }
}

impl Handler<ElectionTimedOut> for RaftNode {
    type Result = ();
    fn handle(&mut self, msg: ElectionTimedOut, _: &mut Context<Self>) {
        let _span = self.span();
        self.step(Event::ElectionTimeout { epoch: msg.epoch });
    }
}

impl Handler<LeaseExpired> for RaftNode {
    type Result = ();
    fn handle(&mut self, msg: LeaseExpired, _: &mut Context<Self>) {
        self.step(Event::LeaseExpired { epoch: msg.epoch });
    }
}

impl Handler<HeartbeatTick> for RaftNode {
    type Result = ();
    fn handle(&mut self, _: HeartbeatTick, _: &mut Context<Self>) {
        let _span = self.span();
        self.step(Event::HeartbeatTick);
    }
}

impl Handler<Persisted> for RaftNode {
    type Result = ();
    fn handle(&mut self, msg: Persisted, _: &mut Context<Self>) {
        let _span = self.span();
        self.disk_write_took(msg.took);
        self.step(Event::Persisted { io_seq: msg.io_seq });
    }
}

impl Handler<PeerMessage> for RaftNode {
    type Result = ();
    fn handle(&mut self, msg: PeerMessage, _: &mut Context<Self>) {
        let envelope = msg.0;
        if self.blocked.contains(&envelope.from) {
            return;
        }
        let _span = self.span();
        if self.parts.core.refuses_sender(envelope.from, &envelope.msg) {
            self.refused_from_non_member(envelope.from, envelope.msg.kind());
            return;
        }
        NodeMetrics::bump(&self.parts.metrics.messages_in);
        self.health
            .last_contact
            .insert(envelope.from, std::time::Instant::now());
        if let Some(replicator) = self.replicators.get(&envelope.from) {
            match envelope.msg {
                Message::AppendResponse {
                    outcome: AppendOutcome::Success { match_index },
                    ..
                } => replicator.do_send(Acknowledged { match_index }),
                Message::HeartbeatResponse { .. } => replicator.do_send(Heard),
                _ => {}
            }
        }
        self.step(Event::Receive(envelope));
    }
}

impl Handler<PeerSnapshotFrame> for RaftNode {
    type Result = ();
    fn handle(&mut self, msg: PeerSnapshotFrame, _: &mut Context<Self>) {
        if self.blocked.contains(&msg.0.from) {
            return;
        }
        if self.parts.core.is_removed(msg.0.from) {
            self.refused_from_non_member(msg.0.from, "snapshot");
            return;
        }
        self.health
            .last_contact
            .insert(msg.0.from, std::time::Instant::now());
        self.snapshot_frame(msg.0);
    }
}

impl Handler<PeerIntroduced> for RaftNode {
    type Result = ();
    fn handle(&mut self, msg: PeerIntroduced, _: &mut Context<Self>) {
        self.peer_http.insert(msg.from, msg.http_addr);
        if let Some(link) = self.parts.links.get(&msg.from) {
            link.do_send(crate::messages::peer_link::PeerIsBack);
        }
        // Learn a caller's peer address only when no configuration gave one (it joined in a
        // configuration this node has not received yet) and it is a usable address.
        let usable = msg
            .peer_addr
            .parse::<std::net::SocketAddr>()
            .map_or(!msg.peer_addr.is_empty(), |a| !a.ip().is_unspecified());
        if usable && msg.from != self.id {
            self.parts
                .peer_addrs
                .entry(msg.from)
                .or_insert(msg.peer_addr);
        }
    }
}

impl Handler<Applied> for RaftNode {
    type Result = ();
    fn handle(&mut self, msg: Applied, _: &mut Context<Self>) {
        let metrics = self.parts.metrics.clone();
        for (log_id, output) in msg.outputs {
            self.applied = self.applied.max(log_id.index);
            // Waiters at or below this index are decided now.
            while let Some(entry) = self.waiters.first_entry() {
                if *entry.key() > log_id.index {
                    break;
                }
                let (index, (term, ack, waiter)) = entry.remove_entry();
                if index != log_id.index || term != log_id.term {
                    NodeMetrics::bump(&metrics.proposals_failed);
                    let _ = waiter.send(Err(ClientError::ProposalDropped));
                    continue;
                }
                NodeMetrics::bump(&metrics.proposals_ok);
                let result = WriteResult {
                    log_id,
                    output: output.clone(),
                };
                if ack == Ack::All {
                    let deadline = std::time::Instant::now() + self.parts.proposal_timeout;
                    let what = super::node_acks::Everywhere::Write(waiter, result);
                    self.acks.everywhere.push((index, deadline, what));
                } else {
                    let _ = waiter.send(Ok(result));
                }
            }
        }
        self.reads_applied();
        let applied = self.applied;
        self.step(Event::Applied { index: applied });
    }
}

impl Handler<StorageFailed> for RaftNode {
    type Result = ();
    fn handle(&mut self, msg: StorageFailed, ctx: &mut Context<Self>) {
        self.fail(msg.reason, ctx);
    }
}

impl Handler<GetStatus> for RaftNode {
    type Result = actix::MessageResult<GetStatus>;
    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(self.status())
    }
}

impl Handler<SubscribeRoles> for RaftNode {
    type Result = ();
    fn handle(&mut self, msg: SubscribeRoles, _: &mut Context<Self>) {
        let core = &self.parts.core;
        msg.0.do_send(RoleChange {
            node: self.id,
            role: core.role(),
            term: core.term(),
            leader: core.leader(),
        });
        self.subscribers.push(msg.0);
    }
}

impl Handler<BlockPeers> for RaftNode {
    type Result = ();
    fn handle(&mut self, msg: BlockPeers, _: &mut Context<Self>) {
        tracing::warn!(node = self.id, blocked = ?msg.0, "fault injection: blocking peers");
        self.blocked = msg.0;
    }
}

impl Handler<Shutdown> for RaftNode {
    type Result = ();
    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
