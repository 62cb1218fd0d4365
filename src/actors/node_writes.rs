//! Client writes: `ClientWrite` queues a command, and `ProposeBatch` proposes every queued
//! command at once when the mailbox has drained (one persist and one AppendEntries per follower
//! for the whole batch). Waiters are answered from `Applied` in `node.rs`.

use actix::{AsyncContext, Context, Handler, ResponseFuture};
use futures::channel::oneshot;

use crate::core::Role;
use crate::messages::node::{Ack, ClientError, ClientWrite, WriteResult};
use crate::metrics::NodeMetrics;

use super::node::RaftNode;

impl Handler<ClientWrite> for RaftNode {
    type Result = ResponseFuture<Result<WriteResult, ClientError>>;

    /// Queues the command; every command waiting in the mailbox is proposed together by one
    /// `ProposeBatch` (one persist, one AppendEntries per follower), which runs once the mailbox
    /// is drained.
    fn handle(&mut self, msg: ClientWrite, ctx: &mut Context<Self>) -> Self::Result {
        let core = &self.parts.core;
        if core.role() != Role::Leader {
            NodeMetrics::bump(&self.parts.metrics.proposals_failed);
            let err = self.not_leader();
            return Box::pin(async move { Err(err) });
        }
        if let Some(reason) = self.disk_refusal() {
            NodeMetrics::bump(&self.parts.metrics.proposals_failed);
            return Box::pin(async move { Err(ClientError::DiskRefused(reason)) });
        }
        let (tx, rx) = oneshot::channel();
        self.proposals.push((msg.command, msg.ack, tx));
        if self.proposals.len() == 1 {
            ctx.notify(ProposeBatch);
        }
        // ack=all answers NotEverywhere itself after a second timeout, counted from the apply.
        let timeout = match msg.ack {
            Ack::All => self.parts.proposal_timeout * 2 + std::time::Duration::from_millis(500),
            _ => self.parts.proposal_timeout,
        };
        Box::pin(async move {
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(ClientError::Unavailable("node stopped".into())),
                Err(_) => Err(ClientError::OutcomeUnknown),
            }
        })
    }
}

/// Self-message: propose every queued client command as one batch.
#[derive(actix::Message)]
#[rtype(result = "()")]
struct ProposeBatch;

impl Handler<ProposeBatch> for RaftNode {
    type Result = ();

    fn handle(&mut self, _: ProposeBatch, _: &mut Context<Self>) {
        let _span = self.span();
        let batch = std::mem::take(&mut self.proposals);
        let mut commands = Vec::with_capacity(batch.len());
        let mut waiters = Vec::with_capacity(batch.len());
        for (command, ack, waiter) in batch {
            commands.push(command);
            waiters.push((ack, waiter));
        }
        match self.parts.core.propose(commands) {
            Ok((ids, actions)) => {
                for (id, (ack, waiter)) in ids.into_iter().zip(waiters) {
                    if ack == Ack::Leader {
                        self.acks.durable.insert(id.index, (id.term, waiter));
                    } else {
                        self.waiters.insert(id.index, (id.term, ack, waiter));
                    }
                }
                self.execute(actions);
            }
            Err(not_leader) => {
                // Leadership was lost between queuing and proposing.
                let err = self.not_leader_naming(not_leader.leader);
                for (_, waiter) in waiters {
                    NodeMetrics::bump(&self.parts.metrics.proposals_failed);
                    let _ = waiter.send(Err(err.clone()));
                }
            }
        }
    }
}
