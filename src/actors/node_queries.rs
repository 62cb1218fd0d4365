//! Read-only queries answered by the node actor: log slices and the cluster view. Kept apart
//! from the hub's protocol handling in `node.rs`.

use actix::{Context, Handler, MessageResult, ResponseFuture};
use futures::future::join_all;

use crate::core::Role;
use crate::messages::node::{ClusterView, GetCluster, GetLog, HealthState, LogSlice, MemberView};
use crate::messages::peer_link::GetLinkStats;
use crate::messages::replicator::GetReplicationStats;

use super::node::RaftNode;

impl Handler<GetLog> for RaftNode {
    type Result = MessageResult<GetLog>;

    fn handle(&mut self, msg: GetLog, _: &mut Context<Self>) -> Self::Result {
        let core = &self.parts.core;
        let log = core.log();
        let from = msg.from.max(log.first_index());
        let to = from.saturating_add(msg.limit.max(1) as u64 - 1);
        MessageResult(LogSlice {
            first_index: log.first_index(),
            last_index: log.last_index(),
            commit: core.commit_index(),
            entries: log.range(from, to),
        })
    }
}

impl Handler<GetCluster> for RaftNode {
    type Result = ResponseFuture<ClusterView>;

    fn handle(&mut self, _: GetCluster, _: &mut Context<Self>) -> Self::Result {
        let core = &self.parts.core;
        let (id, term, leader, role) = (self.id, core.term(), core.leader(), core.role());
        let last = core.last_log_id().index;
        let progress: std::collections::BTreeMap<_, _> = core
            .followers()
            .into_iter()
            .map(|(peer, m, _)| (peer, m))
            .collect();
        let silent_after = self.parts.election_timeout_max.as_millis() as u64;
        let syncing_lag = self.parts.syncing_lag;
        let in_office_ms = self
            .health
            .leader_since
            .map_or(0, |t| t.elapsed().as_millis() as u64);
        let own = self
            .health(core.leader_commit().saturating_sub(self.applied))
            .state;
        let mut members = Vec::new();
        let mut probes = Vec::new();
        let membership = core.membership().clone();
        for member in membership.members() {
            let is_self = member == id;
            let peer_addr = membership
                .addrs
                .get(&member)
                .or_else(|| self.parts.peer_addrs.get(&member))
                .cloned()
                .unwrap_or_default();
            members.push(MemberView {
                id: member,
                peer_addr,
                suffrage: if membership.voters.contains(&member) {
                    "voter"
                } else {
                    "learner"
                },
                http_addr: if is_self {
                    Some(self.parts.http_addr.clone())
                } else {
                    self.peer_http.get(&member).cloned()
                },
                is_self,
                is_leader: leader == Some(member),
                health: if is_self { "ok" } else { "unknown" },
                connected: None,
                match_index: progress.get(&member).copied(),
                lag: progress.get(&member).map(|m| last.saturating_sub(*m)),
                last_ack_ms_ago: None,
                rtt_ms: None,
                state: None,
            });
            let link = self.parts.links.get(&member).map(|l| l.send(GetLinkStats));
            let replication = self
                .replicators
                .get(&member)
                .map(|r| r.send(GetReplicationStats));
            probes.push(async move {
                let link = match link {
                    Some(f) => f.await.ok(),
                    None => None,
                };
                let replication = match replication {
                    Some(f) => f.await.ok(),
                    None => None,
                };
                (link, replication)
            });
        }
        Box::pin(async move {
            for (member, (link, replication)) in members.iter_mut().zip(join_all(probes).await) {
                if member.is_self {
                    member.state = Some(own);
                    continue;
                }
                member.connected = link.map(|l| l.connected);
                if let Some(stats) = replication {
                    member.last_ack_ms_ago = stats.last_ack_ms_ago;
                    member.rtt_ms = stats.rtt_us.map(|us| us as f64 / 1000.0);
                }
                member.health = if role == Role::Leader {
                    // Connected but silent for an election timeout is as good as unreachable;
                    // "unknown" only while a fresh leader has not been in office that long.
                    match member.last_ack_ms_ago {
                        Some(ms) if ms <= silent_after => "ok",
                        None if member.connected == Some(true) && in_office_ms <= silent_after => {
                            "unknown"
                        }
                        _ => "unreachable",
                    }
                } else {
                    match member.connected {
                        Some(true) => "ok",
                        Some(false) => "unreachable",
                        None => "unknown",
                    }
                };
                if role == Role::Leader {
                    member.state = Some(if member.health == "unreachable" {
                        HealthState::Degraded
                    } else if member.lag.is_some_and(|lag| lag > syncing_lag) {
                        HealthState::Syncing
                    } else {
                        HealthState::Active
                    });
                }
            }
            ClusterView {
                id,
                term,
                leader,
                members,
            }
        })
    }
}
