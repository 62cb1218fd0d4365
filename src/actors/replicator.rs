//! `Replicator`: the leader's pipeline stage towards one follower, started when this node becomes
//! leader and stopped when it leaves office (a new term gets new replicators; none is revived).
//! It forwards the core's AppendEntries and heartbeats to the follower's peer link, and measures
//! what the leader needs to report about the follower: round-trip time, time since the last
//! acknowledgement, appends in flight.

use std::collections::VecDeque;
use std::time::Instant;

use actix::{Actor, Addr, Context, Handler};

use crate::core::{Message, NodeId};
use crate::messages::peer_link::SendToPeer;
use crate::messages::replicator::{
    Acknowledged, GetReplicationStats, Heard, Replicate, ReplicationStats,
};
use crate::transport::PeerLink;

/// Replication towards one follower during one leader term.
pub struct Replicator {
    peer: NodeId,
    term: u64,
    link: Addr<PeerLink>,
    /// `(last index sent, when)` of appends in flight, oldest first.
    inflight: VecDeque<(u64, Instant)>,
    rtt_us: Option<u64>,
    last_ack: Option<Instant>,
    sent: u64,
}

impl Replicator {
    /// A replicator for `peer` in leader term `term`, sending through `link`.
    pub fn new(peer: NodeId, term: u64, link: Addr<PeerLink>) -> Self {
        Self {
            peer,
            term,
            link,
            inflight: VecDeque::new(),
            rtt_us: None,
            last_ack: None,
            sent: 0,
        }
    }
}

impl Actor for Replicator {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        tracing::debug!(peer = self.peer, term = self.term, "replicator started");
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        tracing::debug!(peer = self.peer, term = self.term, "replicator stopped");
    }
}

impl Handler<Replicate> for Replicator {
    type Result = ();

    fn handle(&mut self, msg: Replicate, _: &mut Context<Self>) {
        if let Message::AppendRequest { prev, entries, .. } = &msg.0.msg {
            let last = prev.index + entries.len() as u64;
            if !entries.is_empty() {
                self.inflight.push_back((last, Instant::now()));
                // Lost appends are never acknowledged: keep the record bounded.
                while self.inflight.len() > 1024 {
                    self.inflight.pop_front();
                }
            }
        }
        self.sent += 1;
        self.link.do_send(SendToPeer(msg.0));
    }
}

impl Handler<Acknowledged> for Replicator {
    type Result = ();

    fn handle(&mut self, msg: Acknowledged, _: &mut Context<Self>) {
        let now = Instant::now();
        self.last_ack = Some(now);
        while let Some(&(last, sent_at)) = self.inflight.front() {
            if last > msg.match_index {
                break;
            }
            if last == msg.match_index {
                self.rtt_us = Some(now.duration_since(sent_at).as_micros() as u64);
            }
            self.inflight.pop_front();
        }
    }
}

impl Handler<Heard> for Replicator {
    type Result = ();

    fn handle(&mut self, _: Heard, _: &mut Context<Self>) {
        self.last_ack = Some(Instant::now());
    }
}

impl Handler<GetReplicationStats> for Replicator {
    type Result = actix::MessageResult<GetReplicationStats>;

    fn handle(&mut self, _: GetReplicationStats, _: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(ReplicationStats {
            rtt_us: self.rtt_us,
            last_ack_ms_ago: self.last_ack.map(|t| t.elapsed().as_millis() as u64),
            inflight: self.inflight.len(),
            sent: self.sent,
        })
    }
}
