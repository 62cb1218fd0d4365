//! [`PeerLink`]: the actor that owns the outbound connection to one remote peer, used by every
//! role (votes, appends, heartbeats and responses all leave through it).
//!
//! Senders never wait: [`SendToPeer`] encodes the envelope and `try_send`s the frame into one of two
//! bounded queues, or drops it (counted) when the link is backing off after a failure, the queue is
//! full, or the frame could not be sent anyway. Raft retries everything it needs. Appends that carry
//! entries go to the bulk queue; everything else goes to the control queue, which the writer always
//! serves first, so heartbeats and votes never wait behind a backlog of entries.

use std::sync::Arc;

use actix::{Actor, Addr, Context, Handler, MessageResult};
use actix_rt::task::JoinHandle;
use bytes::Bytes;
use tokio::sync::mpsc::{self, error::TrySendError, Sender};
use tracing::{debug, warn};

use super::frame::{encode_frame, Frame};
use super::stats::{LinkState, LinkStats};
use super::writer::{self, Queues};
use crate::core::types::{Message, NodeId};
use crate::messages::peer_link::{GetLinkStats, SendSnapshotFrame, SendToPeer};

/// Settings of one [`PeerLink`].
#[derive(Clone, Debug)]
pub struct PeerLinkConfig {
    /// Our node id, sent in the Hello; envelopes from another id are refused.
    pub local_id: NodeId,
    /// The remote node; envelopes addressed to another id are refused.
    pub peer_id: NodeId,
    /// The remote node's peer address (`host:port`), resolved on each connection attempt.
    pub peer_addr: String,
    /// Cluster name, sent in the Hello.
    pub cluster: String,
    /// Our HTTP address, sent in the Hello so the peer can redirect clients to us.
    pub http_addr: String,
    /// Our own peer address, sent in the Hello so the peer can answer us before it learns it
    /// from a configuration.
    pub local_peer_addr: String,
    /// Largest frame in bytes (version byte included); must match the peers' listener setting.
    /// Larger messages are dropped here rather than killing the connection at the peer.
    pub max_frame_bytes: usize,
    /// Capacity of each of the two queues (control and bulk), in messages; at least 1.
    pub queue_capacity: usize,
    /// The cluster secret, if the cluster uses one: the link then runs the handshake of
    /// [`super::auth`] on every connection and authenticates every frame.
    pub secret: Option<super::auth::ClusterSecret>,
    /// Mutual TLS: when set, every connection is TLS, presents this node's certificate and
    /// checks that the peer's certificate names `peer_id` (see [`super::tls_stream`]).
    pub tls: Option<super::tls_stream::PeerTls>,
}

/// The outbound connection to one peer. See the module documentation.
pub struct PeerLink {
    cfg: Arc<PeerLinkConfig>,
    stats: Arc<LinkStats>,
    control: Sender<Bytes>,
    bulk: Sender<Bytes>,
    /// Taken by `started` to spawn the writer.
    queues: Option<Queues>,
    /// Wakes the writer out of a reconnect backoff.
    wake: Arc<tokio::sync::Notify>,
    /// The writer task; aborted (closing the socket) when the actor stops or is dropped.
    writer: Option<JoinHandle<()>>,
}

impl PeerLink {
    /// Builds a link without starting it (use [`PeerLink::stats`] before [`Actor::start`] to keep
    /// a lock-free handle on its counters).
    pub fn new(cfg: PeerLinkConfig) -> Self {
        let capacity = cfg.queue_capacity.max(1);
        let (control, control_rx) = mpsc::channel(capacity);
        let (bulk, bulk_rx) = mpsc::channel(capacity);
        let wake = Arc::new(tokio::sync::Notify::new());
        Self {
            cfg: Arc::new(cfg),
            stats: Arc::new(LinkStats::default()),
            control,
            bulk,
            queues: Some(Queues {
                control: control_rx,
                bulk: bulk_rx,
                wake: wake.clone(),
            }),
            wake,
            writer: None,
        }
    }

    /// Builds and starts a link on the current arbiter; it connects in the background.
    pub fn start(cfg: PeerLinkConfig) -> Addr<PeerLink> {
        Actor::start(Self::new(cfg))
    }

    /// The link's live counters.
    pub fn stats(&self) -> Arc<LinkStats> {
        self.stats.clone()
    }

    /// Drops one message, counting it.
    fn drop_message(&self, kind: &'static str, why: &'static str) {
        self.stats.add_dropped(1);
        debug!(
            node = self.cfg.local_id,
            peer = self.cfg.peer_id,
            kind,
            why,
            "peer message dropped"
        );
    }
}

impl Actor for PeerLink {
    type Context = Context<Self>;

    /// Spawns the writer on this actor's arbiter. It is a separate task rather than a context item
    /// because actix keeps an actor alive while it has context items: as a task, the link stops
    /// once every `Addr` is dropped (or on `ctx.stop()`), and `stopped` then aborts the writer.
    fn started(&mut self, _ctx: &mut Self::Context) {
        if let Some(queues) = self.queues.take() {
            let run = writer::run(self.cfg.clone(), self.stats.clone(), queues);
            self.writer = Some(actix_rt::spawn(run));
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.stop_writer();
        debug!(
            node = self.cfg.local_id,
            peer = self.cfg.peer_id,
            "peer link stopped"
        );
    }
}

impl PeerLink {
    /// Aborts the writer task, which drops (closes) its connection.
    fn stop_writer(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.abort();
        }
        self.stats.set_state(LinkState::Backoff);
    }
}

impl Drop for PeerLink {
    fn drop(&mut self) {
        self.stop_writer();
    }
}

impl Handler<SendToPeer> for PeerLink {
    type Result = ();

    fn handle(&mut self, SendToPeer(env): SendToPeer, _ctx: &mut Self::Context) {
        let kind = env.msg.kind();
        if env.from != self.cfg.local_id || env.to != self.cfg.peer_id {
            warn!(
                node = self.cfg.local_id,
                peer = self.cfg.peer_id,
                from = env.from,
                to = env.to,
                kind,
                "misaddressed envelope dropped"
            );
            self.stats.add_dropped(1);
            return;
        }
        if self.stats.state() == LinkState::Backoff {
            return self.drop_message(kind, "disconnected");
        }
        let bulk =
            matches!(&env.msg, Message::AppendRequest { entries, .. } if !entries.is_empty());
        self.queue_frame(Frame::Raft(env), kind, bulk);
    }
}

impl Handler<SendSnapshotFrame> for PeerLink {
    type Result = ();

    fn handle(&mut self, SendSnapshotFrame(frame): SendSnapshotFrame, _ctx: &mut Self::Context) {
        let kind = frame.kind();
        if frame.from != self.cfg.local_id || frame.to != self.cfg.peer_id {
            self.stats.add_dropped(1);
            return;
        }
        if self.stats.state() == LinkState::Backoff {
            return self.drop_message(kind, "disconnected");
        }
        let bulk = matches!(frame.body, crate::transport::SnapshotBody::Chunk { .. });
        self.queue_frame(Frame::Snapshot(frame), kind, bulk);
    }
}

impl PeerLink {
    /// Encodes `frame` and queues it (bulk or control), or drops it, counting either way.
    fn queue_frame(&mut self, frame: Frame, kind: &'static str, bulk: bool) {
        let frame = match encode_frame(&frame) {
            Ok(frame) => frame,
            Err(e) => {
                self.stats.add_encode_failures(1);
                self.stats.add_dropped(1);
                warn!(node = self.cfg.local_id, peer = self.cfg.peer_id, kind, error = %e, "cannot encode message");
                return;
            }
        };
        self.stats.add_encoded(1);
        self.stats.add_encoded_bytes(frame.len() as u64);
        if frame.len() > self.cfg.max_frame_bytes {
            self.stats.add_oversized(1);
            self.stats.add_dropped(1);
            warn!(
                node = self.cfg.local_id,
                peer = self.cfg.peer_id,
                kind,
                len = frame.len(),
                max = self.cfg.max_frame_bytes,
                "message exceeds the frame limit, dropped"
            );
            return;
        }
        let queue = if bulk { &self.bulk } else { &self.control };
        match queue.try_send(frame) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.drop_message(kind, "queue full"),
            Err(TrySendError::Closed(_)) => self.drop_message(kind, "writer stopped"),
        }
    }
}

impl Handler<crate::messages::peer_link::PeerIsBack> for PeerLink {
    type Result = ();

    /// The peer connected to us: if this link is waiting to reconnect, try now.
    fn handle(&mut self, _: crate::messages::peer_link::PeerIsBack, _: &mut Self::Context) {
        if self.stats.state() == LinkState::Backoff {
            self.wake.notify_one();
        }
    }
}

impl Handler<GetLinkStats> for PeerLink {
    type Result = MessageResult<GetLinkStats>;

    fn handle(&mut self, _msg: GetLinkStats, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.stats.snapshot())
    }
}
