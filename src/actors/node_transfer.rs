//! Leadership transfer on the node: `TransferLeader` starts it in the core and answers once a
//! new leader took office (the target, or an error naming whoever won instead).

use actix::{Context, Handler, ResponseFuture};
use futures::channel::oneshot;

use crate::core::{NodeId, TransferError};
use crate::messages::node::{ClientError, TransferLeader};

use super::node::RaftNode;

/// Waiting for a transfer to `target` to complete.
pub(super) type TransferWaiter = (NodeId, oneshot::Sender<Result<NodeId, ClientError>>);

impl RaftNode {
    /// A leader is known now: answer the transfers waiting for it.
    pub(super) fn transfers_settled(&mut self, leader: Option<NodeId>) {
        let Some(leader) = leader else { return };
        if leader == self.id {
            return; // still (or again) this node: the transfer goes on or times out
        }
        for (target, waiter) in std::mem::take(&mut self.transfers) {
            let answer = if leader == target {
                Ok(leader)
            } else {
                Err(ClientError::Unavailable(format!(
                    "node {leader} won the election instead of node {target}"
                )))
            };
            let _ = waiter.send(answer);
        }
    }
}

impl Handler<TransferLeader> for RaftNode {
    type Result = ResponseFuture<Result<NodeId, ClientError>>;

    fn handle(&mut self, msg: TransferLeader, _: &mut Context<Self>) -> Self::Result {
        let _span = self.span();
        match self.parts.core.transfer_leader(msg.to) {
            Ok((target, _)) if target == self.id => Box::pin(async move { Ok(target) }),
            Ok((target, actions)) => {
                tracing::info!("node {} transfers leadership to node {}", self.id, target);
                let (tx, rx) = oneshot::channel();
                self.transfers.push((target, tx));
                self.execute(actions);
                let timeout = self.parts.election_timeout_max * 3;
                Box::pin(async move {
                    match tokio::time::timeout(timeout, rx).await {
                        Ok(Ok(answer)) => answer,
                        Ok(Err(_)) => Err(ClientError::Unavailable("node stopped".into())),
                        Err(_) => Err(ClientError::Unavailable(format!(
                            "the transfer to node {target} did not complete in time"
                        ))),
                    }
                })
            }
            Err(TransferError::NotLeader(leader)) => {
                let err = self.not_leader_naming(leader);
                Box::pin(async move { Err(err) })
            }
            Err(TransferError::UnknownTarget(id)) => {
                Box::pin(
                    async move { Err(ClientError::Invalid(format!("node {id} is not a voter"))) },
                )
            }
            Err(TransferError::NoCandidate) => {
                Box::pin(async move { Err(ClientError::Invalid("there is no other voter".into())) })
            }
        }
    }
}
