//! Actix messages received by [`PeerLink`](crate::transport::PeerLink), the outbound connection to
//! one peer.

use actix::Message;

use crate::core::types::Envelope;
use crate::transport::LinkStatsSnapshot;

/// Sends one Raft message to the link's peer: any actor (hub, replicator) -> `PeerLink`.
///
/// Never blocks and never fails from the sender's view: the message is queued, or dropped and
/// counted when the link is down, its queue is full or the frame is too large (Raft retries).
/// Messages of the same class (appends with entries; everything else) leave in the order sent;
/// control messages may overtake appends. `env.from`/`env.to` must be the link's local and peer
/// ids, otherwise the message is dropped.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct SendToPeer(pub Envelope);

/// Sends one snapshot transfer frame to the link's peer: chunks go to the bulk queue, acks to
/// the control queue; dropped and counted like [`SendToPeer`] when they cannot be queued.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct SendSnapshotFrame(pub crate::transport::SnapshotFrame);

/// The peer just connected to this node (it said hello): a link backing off after failures
/// reconnects at once instead of waiting out its backoff (up to a second).
#[derive(Message, Clone, Copy, Debug, Default)]
#[rtype(result = "()")]
pub struct PeerIsBack;

/// Asks a link for a copy of its counters: any observer -> `PeerLink`.
#[derive(Message, Clone, Copy, Debug, Default)]
#[rtype(result = "LinkStatsSnapshot")]
pub struct GetLinkStats;
