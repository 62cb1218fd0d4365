//! Linearizable reads on the node: `ClientRead` queues a read, `ReadBatch` hands every queued
//! read to the core at once (one heartbeat round for all of them), and a read is answered when
//! the core confirmed it (`ReadReady`) and the state machine has applied its index.

use actix::{AsyncContext, Context, Handler, ResponseFuture};
use futures::channel::oneshot;

use crate::core::{Index, Role};
use crate::messages::node::{ClientError, ClientRead};

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
    /// Confirmed, waiting for the state machine to apply `index`.
    applying: Vec<(Index, ReadWaiter)>,
}

impl RaftNode {
    /// The core confirmed read `id`: answer it now or once `index` is applied.
    pub(super) fn read_ready(&mut self, id: u64, index: Index) {
        if let Some(waiter) = self.reads.confirming.remove(&id) {
            if self.applied >= index {
                let _ = waiter.send(Ok(self.applied));
            } else {
                self.reads.applying.push((index, waiter));
            }
        }
    }

    /// The core lost leadership before confirming these reads.
    pub(super) fn reads_failed(&mut self, ids: Vec<u64>) {
        let err = self.not_leader();
        for id in ids {
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
            .partition(|(index, _)| *index <= applied);
        self.reads.applying = waiting;
        for (_, waiter) in ready {
            let _ = waiter.send(Ok(applied));
        }
    }

    /// The node stops: every read fails.
    pub(super) fn reads_stopped(&mut self, reason: &str) {
        let reads = std::mem::take(&mut self.reads);
        let waiters = reads
            .queued
            .into_iter()
            .map(|(_, w)| w)
            .chain(reads.confirming.into_values())
            .chain(reads.applying.into_iter().map(|(_, w)| w));
        for waiter in waiters {
            let _ = waiter.send(Err(ClientError::Unavailable(reason.to_string())));
        }
    }

    /// `NotLeader` naming the leader this node knows.
    pub(super) fn not_leader(&self) -> ClientError {
        let leader = self.parts.core.leader();
        ClientError::NotLeader {
            leader_id: leader,
            leader_addr: self.leader_addr(leader),
        }
    }
}

impl Handler<ClientRead> for RaftNode {
    type Result = ResponseFuture<Result<Index, ClientError>>;

    fn handle(&mut self, _: ClientRead, ctx: &mut Context<Self>) -> Self::Result {
        if self.parts.core.role() != Role::Leader {
            let err = self.not_leader();
            return Box::pin(async move { Err(err) });
        }
        let (tx, rx) = oneshot::channel();
        self.reads.next_id += 1;
        self.reads.queued.push((self.reads.next_id, tx));
        if self.reads.queued.len() == 1 {
            ctx.notify(ReadBatch);
        }
        let timeout = self.parts.proposal_timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(ClientError::Unavailable("node stopped".into())),
                Err(_) => Err(ClientError::Unavailable(
                    "the leader could not confirm its leadership with a quorum in time".into(),
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
            Err(_) => self.reads_failed(ids),
        }
    }
}
