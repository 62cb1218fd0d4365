//! The node's health state (ACTIVE / SYNCING / DEGRADED, the states the specification's index-manager document names), with the reason, from what
//! the node observes: contact with its peers, its distance from the leader's commit, and how
//! long its disk writes take.

use std::time::{Duration, Instant};

use crate::core::{NodeId, Role};
use actix::{Context, Handler};

use crate::messages::node::{DiskRefusal, Health, HealthState};

use super::node::RaftNode;

/// How long one slow disk write keeps the node DEGRADED.
const SLOW_DISK_MEMORY: Duration = Duration::from_secs(10);

/// What health is computed from.
#[derive(Default)]
pub(super) struct HealthSignals {
    /// When each peer was last heard from.
    pub last_contact: std::collections::BTreeMap<NodeId, Instant>,
    /// Since when this node has known no leader.
    pub leaderless_since: Option<Instant>,
    /// The latest slow disk write: when it ended and how long it took.
    pub slow_disk: Option<(Instant, Duration)>,
    /// When this node last took office as leader.
    pub leader_since: Option<Instant>,
    /// Stores whose disk refuses writes (`log`, `state machine`), with the reason.
    pub disk_refusals: std::collections::BTreeMap<&'static str, String>,
}

impl Handler<DiskRefusal> for RaftNode {
    type Result = ();

    /// The disk of a store refuses writes (or accepts them again). A leader whose disk refuses
    /// writes hands leadership to the most up-to-date voter, so that the cluster keeps taking
    /// writes; meanwhile (and on a single-node cluster) it refuses new ones with
    /// [`ClientError::DiskRefused`](crate::messages::node::ClientError::DiskRefused).
    fn handle(&mut self, msg: DiskRefusal, _: &mut Context<Self>) {
        let _span = self.span();
        match msg.refusal {
            Some(reason) => {
                tracing::warn!(
                    "node {} is DEGRADED: the disk of its {} refuses writes",
                    self.id,
                    msg.store
                );
                self.health.disk_refusals.insert(msg.store, reason);
                if self.parts.core.role() == Role::Leader {
                    if let Ok((target, actions)) = self.parts.core.transfer_leader(None) {
                        if target != self.id {
                            tracing::info!("node {} hands leadership to node {target} while its disk refuses writes", self.id);
                            self.execute(actions);
                        }
                    }
                }
            }
            None => {
                tracing::info!(
                    "the disk of node {}'s {} accepts writes again",
                    self.id,
                    msg.store
                );
                self.health.disk_refusals.remove(msg.store);
            }
        }
    }
}

impl RaftNode {
    /// Why new writes must be refused now: a store's disk refuses writes.
    pub(super) fn disk_refusal(&self) -> Option<String> {
        let (store, reason) = self.health.disk_refusals.iter().next()?;
        Some(format!(
            "this node's disk refuses writes ({store}): {reason}; nothing was applied"
        ))
    }

    /// Records a durable write's duration.
    pub(super) fn disk_write_took(&mut self, took: Duration) {
        if took > self.parts.slow_disk {
            tracing::warn!(
                node = self.id,
                took_ms = took.as_millis() as u64,
                "slow durable log write"
            );
            self.health.slow_disk = Some((Instant::now(), took));
        }
    }

    /// Records the known leader after a role change.
    pub(super) fn leader_known(&mut self, leader: Option<NodeId>) {
        match leader {
            Some(_) => self.health.leaderless_since = None,
            None => {
                self.health
                    .leaderless_since
                    .get_or_insert_with(Instant::now);
            }
        }
    }

    /// Voters other than this node that it heard from within the longest election timeout.
    pub(super) fn peers_in_contact(&self) -> usize {
        let window = self.parts.election_timeout_max;
        let voters = &self.parts.core.membership().voters;
        self.health
            .last_contact
            .iter()
            .filter(|(id, t)| voters.contains(id) && t.elapsed() <= window)
            .count()
    }

    /// The node's health now.
    pub(super) fn health(&self, lag: u64) -> Health {
        let core = &self.parts.core;
        let degraded = |reason: String| Health {
            state: HealthState::Degraded,
            reason: Some(reason),
        };
        if let Some((store, reason)) = self.health.disk_refusals.iter().next() {
            return degraded(format!(
                "the disk of the {store} refuses writes: {reason}; writes are refused until it \
                 accepts them again"
            ));
        }
        if let Some((at, took)) = self.health.slow_disk {
            if at.elapsed() < SLOW_DISK_MEMORY {
                return degraded(format!(
                    "slow disk: a durable log write took {} ms (threshold {} ms)",
                    took.as_millis(),
                    self.parts.slow_disk.as_millis()
                ));
            }
        }
        let window = self.parts.election_timeout_max.as_millis();
        if core.role() == Role::Leader {
            let membership = core.membership();
            let peers = membership.voters.len().saturating_sub(1);
            let heard = self.peers_in_contact();
            if heard + 1 < membership.quorum() {
                return degraded(format!(
                    "leader without quorum contact: heard from {heard} of {peers} peers within {window} ms"
                ));
            }
        } else if let Some(since) = self.health.leaderless_since {
            let ms = since.elapsed().as_millis();
            if ms > window {
                return degraded(format!("no leader reachable for {ms} ms"));
            }
        }
        if lag > self.parts.syncing_lag {
            return Health {
                state: HealthState::Syncing,
                reason: Some(format!("{lag} entries behind the leader's commit")),
            };
        }
        Health {
            state: HealthState::Active,
            reason: None,
        }
    }
}
