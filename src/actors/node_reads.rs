//! Linearizable reads on the node: `ClientRead` queues a read, `ReadBatch` hands every queued
//! read to the core at once (one heartbeat round for all of them), and a read is answered when
//! the core confirmed it (`ReadReady`) and the state machine has applied its index.

use actix::{AsyncContext, Context, Handler, ResponseFuture};
use futures::channel::oneshot;

use crate::core::{Index, Role};
use crate::messages::node::{ClientError, ClientRead, ReadMode};

use super::node::RaftNode;

/// Answers a read with the applied index the local state reflects.
pub(super) type ReadWaiter = oneshot::Sender<Result<Index, ClientError>>;

/// Reads on their way through the node.
#[derive(Default)]
pub(super) struct Reads {
    next_id: u64,
    /// Waiting for the next `ReadBatch`.
    queued: Vec<(u64, ReadWaiter)>,
    /// Handed to the core, waiting for `ReadReady`.
    confirming: std::collections::HashMap<u64, ReadWaiter>,
    /// Confirmed, waiting for the state machine to apply `index` (`true`: then for every voter).
    applying: Vec<(Index, bool, ReadWaiter)>,
    /// Ids of `consistency=all` reads.
    all: std::collections::HashSet<u64>,
    /// When each read round still unconfirmed began (for the lease).
    round_started: std::collections::BTreeMap<u64, std::time::Instant>,
    /// The leader lease: linearizable reads may be served locally until then.
    pub(super) lease_until: Option<std::time::Instant>,
}

impl RaftNode {
    /// Notes when read rounds begin (called after every core step); a round's start bounds the
    /// lease its confirmation grants.
    pub(super) fn note_rounds(&mut self) {
        let round = self.parts.core.read_round();
        if self.parts.core.role() == Role::Leader && !self.reads.round_started.contains_key(&round)
        {
            self.reads
                .round_started
                .insert(round, std::time::Instant::now());
            while self.reads.round_started.len() > 64 {
                self.reads.round_started.pop_first();
            }
        }
    }

    /// A quorum acknowledged `round`: no other leader can be elected before the round's start
    /// plus the minimum election timeout (followers ignore campaigns that long after hearing from
    /// this leader), less the configured clock-drift bound.
    pub(super) fn lease_confirmed(&mut self, round: u64) {
        let Some(&started) = self.reads.round_started.get(&round) else {
            return;
        };
        self.reads.round_started.retain(|&r, _| r > round);
        if !self.parts.lease_enabled {
            return;
        }
        let until = started + self.parts.lease_duration;
        if self.reads.lease_until.is_none_or(|current| until > current) {
            self.reads.lease_until = Some(until);
        }
    }

    /// Whether this leader holds a lease right now.
    pub(super) fn has_lease(&self) -> bool {
        self.parts.core.serves_reads()
            && self
                .reads
                .lease_until
                .is_some_and(|until| std::time::Instant::now() < until)
    }

    /// Leadership changed: any lease is void.
    pub(super) fn lease_lost(&mut self) {
        self.reads.lease_until = None;
        self.reads.round_started.clear();
    }

    /// The core confirmed read `id`: answer it now or once `index` is applied.
    pub(super) fn read_ready(&mut self, id: u64, index: Index) {
        let everywhere = self.reads.all.remove(&id);
        if let Some(waiter) = self.reads.confirming.remove(&id) {
            self.reads.applying.push((index, everywhere, waiter));
            self.reads_applied();
        }
    }

    /// The core lost leadership before confirming these reads.
    pub(super) fn reads_failed(&mut self, ids: Vec<u64>) {
        let err = self.not_leader();
        for id in ids {
            self.reads.all.remove(&id);
            if let Some(waiter) = self.reads.confirming.remove(&id) {
                let _ = waiter.send(Err(err.clone()));
            }
        }
    }

    /// The state machine applied up to `self.applied`: answer the reads it covers.
    pub(super) fn reads_applied(&mut self) {
        let applied = self.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads.applying)
            .into_iter()
            .partition(|(index, ..)| *index <= applied);
        self.reads.applying = waiting;
        for (index, everywhere, waiter) in ready {
            if everywhere {
                let deadline = std::time::Instant::now() + self.parts.proposal_timeout;
                let what = super::node_acks::Everywhere::Read(waiter);
                self.acks.everywhere.push((index, deadline, what));
            } else {
                let _ = waiter.send(Ok(applied));
            }
        }
        self.check_everywhere();
    }

    /// The node stops: every read fails.
    pub(super) fn reads_stopped(&mut self, reason: &str) {
        let reads = std::mem::take(&mut self.reads);
        let waiters = reads
            .queued
            .into_iter()
            .map(|(_, w)| w)
            .chain(reads.confirming.into_values())
            .chain(reads.applying.into_iter().map(|(_, _, w)| w));
        for waiter in waiters {
            let _ = waiter.send(Err(ClientError::Unavailable(reason.to_string())));
        }
    }

    /// `NotLeader` naming the leader this node knows.
    pub(super) fn not_leader(&self) -> ClientError {
        self.not_leader_naming(self.parts.core.leader())
    }

    /// `NotLeader` naming `leader`; with none, how many voters this node reaches.
    pub(super) fn not_leader_naming(&self, leader: Option<crate::core::NodeId>) -> ClientError {
        let reach = leader.is_none().then(|| {
            let voters = &self.parts.core.membership().voters;
            let me = usize::from(voters.contains(&self.parts.core.id()));
            crate::messages::node::Reach {
                reachable: self.peers_in_contact() + me,
                voters: voters.len(),
            }
        });
        ClientError::NotLeader {
            leader_id: leader,
            leader_addr: self.leader_addr(leader),
            reach,
        }
    }
}

impl Handler<ClientRead> for RaftNode {
    type Result = ResponseFuture<Result<Index, ClientError>>;

    /// Linearizable reads are queued for one shared `ReadBatch`; a lease read on a leader that
    /// holds its lease needs no round at all (only the apply of the current commit index).
    fn handle(&mut self, msg: ClientRead, ctx: &mut Context<Self>) -> Self::Result {
        let leading = self.parts.core.role() == Role::Leader;
        let (tx, rx) = oneshot::channel();
        match msg.mode {
            ReadMode::All if !leading => {
                let err = self.not_leader();
                return Box::pin(async move { Err(err) });
            }
            ReadMode::Lease if leading && self.has_lease() => {
                let index = self.parts.core.commit_index();
                self.reads.applying.push((index, false, tx));
                self.reads_applied();
            }
            mode => {
                self.reads.next_id += 1;
                let id = self.reads.next_id;
                if mode == ReadMode::All {
                    self.reads.all.insert(id);
                }
                self.reads.queued.push((id, tx));
                if self.reads.queued.len() == 1 {
                    ctx.notify(ReadBatch);
                }
            }
        }
        let timeout = match msg.mode {
            ReadMode::All => {
                self.parts.proposal_timeout * 2 + std::time::Duration::from_millis(500)
            }
            _ => self.parts.proposal_timeout,
        };
        Box::pin(async move {
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(ClientError::Unavailable("node stopped".into())),
                Err(_) => Err(ClientError::Unavailable(
                    "the read could not be confirmed by a quorum in time".into(),
                )),
            }
        })
    }
}

/// Self-message: hand every queued read to the core in one heartbeat round.
#[derive(actix::Message)]
#[rtype(result = "()")]
struct ReadBatch;

impl Handler<ReadBatch> for RaftNode {
    type Result = ();

    fn handle(&mut self, _: ReadBatch, _: &mut Context<Self>) {
        let _span = self.span();
        let queued = std::mem::take(&mut self.reads.queued);
        let ids: Vec<u64> = queued.iter().map(|(id, _)| *id).collect();
        self.reads.confirming.extend(queued);
        match self.parts.core.read_index(ids.clone()) {
            Ok(actions) => self.execute(actions),
            Err(_) => {
                for id in &ids {
                    self.reads.all.remove(id);
                }
                self.reads_failed(ids)
            }
        }
    }
}
