//! Membership on the node hub: links and replicators follow the configuration in force, and
//! clients change the configuration one server at a time (`ChangeMembership`).

use actix::{Actor, Addr, Context, Handler, ResponseFuture};
use futures::channel::oneshot;

use crate::core::{ChangeError, Membership, NodeId, Role};
use crate::messages::node::{Ack, ChangeMembership, ChangeResult, ClientError};
use crate::transport::{PeerLink, PeerLinkConfig};

use super::node::RaftNode;
use super::replicator::Replicator;

impl RaftNode {
    /// The link to `peer`, started on first use when its address is known.
    pub(super) fn link_to(&mut self, peer: NodeId) -> Option<Addr<PeerLink>> {
        if peer == self.id {
            return None;
        }
        if let Some(link) = self.parts.links.get(&peer) {
            return Some(link.clone());
        }
        let addr = self.parts.peer_addrs.get(&peer)?.clone();
        let cfg = PeerLinkConfig {
            peer_id: peer,
            peer_addr: addr,
            ..self.parts.link_template.clone()
        };
        let link = PeerLink::start(cfg);
        self.parts.links.insert(peer, link.clone());
        Some(link)
    }

    /// A replicator for every follower the leader tracks (voters and learners).
    pub(super) fn start_replicators(&mut self) {
        let term = self.parts.core.term();
        let peers: Vec<NodeId> = self
            .parts
            .core
            .followers()
            .into_iter()
            .map(|(id, ..)| id)
            .collect();
        self.replicators.retain(|id, _| peers.contains(id));
        for peer in peers {
            if self.replicators.contains_key(&peer) {
                continue;
            }
            if let Some(link) = self.link_to(peer) {
                let replicator = Replicator::new(peer, term, link).start();
                self.replicators.insert(peer, replicator);
            }
        }
    }

    /// `Action::MembershipChanged`: learn the members' addresses, connect to new members, drop
    /// links to nodes that are neither members nor still followed by this leader.
    pub(super) fn membership_changed(&mut self, membership: Membership) {
        tracing::info!(
            node = self.id,
            voters = ?membership.voters,
            learners = ?membership.learners,
            "configuration in force"
        );
        for (&id, addr) in &membership.addrs {
            if id == self.id {
                continue;
            }
            if self.parts.peer_addrs.get(&id) != Some(addr) {
                self.parts.links.remove(&id); // reconnect to the new address
                self.parts.peer_addrs.insert(id, addr.clone());
            }
        }
        let followed: Vec<NodeId> = self
            .parts
            .core
            .followers()
            .into_iter()
            .map(|(id, ..)| id)
            .collect();
        let keep = |id: &NodeId| membership.contains(*id) || followed.contains(id);
        self.parts.links.retain(|id, _| keep(id));
        for id in membership.members().collect::<Vec<_>>() {
            let _ = self.link_to(id);
        }
        if self.parts.core.role() == Role::Leader {
            self.start_replicators();
        }
    }
}

impl Handler<ChangeMembership> for RaftNode {
    type Result = ResponseFuture<Result<ChangeResult, ClientError>>;

    /// Appends the change and answers once it is committed and applied here.
    fn handle(&mut self, msg: ChangeMembership, _: &mut Context<Self>) -> Self::Result {
        let _span = self.span();
        let change = msg.0;
        let result = self.parts.core.propose_change(change.clone());
        let membership = self.parts.core.membership().clone();
        let (id, actions) = match result {
            Ok(ok) => ok,
            Err(err) => {
                let err = match err {
                    ChangeError::NotLeader(leader) => self.not_leader_naming(leader),
                    ChangeError::InProgress => ClientError::Unavailable(err.to_string()),
                    ChangeError::UnknownNode(_) => ClientError::NotFound(err.to_string()),
                    ChangeError::BadAddress => ClientError::Invalid(err.to_string()),
                    ChangeError::AlreadyVoter(_)
                    | ChangeError::NotCaughtUp { .. }
                    | ChangeError::LastVoter => ClientError::Conflict(err.to_string()),
                };
                return Box::pin(async move { Err(err) });
            }
        };
        let Some(log_id) = id else {
            let index = self.parts.core.commit_index();
            return Box::pin(async move {
                Ok(ChangeResult {
                    index,
                    changed: false,
                    membership,
                })
            });
        };
        tracing::info!(
            node = self.id,
            ?change,
            index = log_id.index,
            "membership change proposed"
        );
        let (tx, rx) = oneshot::channel();
        self.waiters
            .insert(log_id.index, (log_id.term, Ack::Quorum, tx));
        self.execute(actions);
        let timeout = self.parts.proposal_timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(Ok(_))) => Ok(ChangeResult {
                    index: log_id.index,
                    changed: true,
                    membership,
                }),
                Ok(Ok(Err(err))) => Err(err),
                Ok(Err(_)) => Err(ClientError::Unavailable("node stopped".into())),
                Err(_) => Err(ClientError::OutcomeUnknown),
            }
        })
    }
}
