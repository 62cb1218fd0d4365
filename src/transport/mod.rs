//! The peer transport: persistent TCP connections carrying length-delimited, versioned bincode
//! frames between nodes.
//!
//! - [`frame`]: the wire format ([`Frame`], [`encode_frame`], [`decode_frame`]).
//! - [`listener`]: the inbound side ([`serve_peers`]), validating every connection and frame.
//! - [`PeerLink`]: the outbound side, one actor per remote peer, with a control queue that always
//!   overtakes the bulk queue of appends, and reconnection with jittered exponential backoff.
//! - [`LinkStats`]: the link counters.
//!
//! Connections are one-directional: a node sends over its own `PeerLink` and receives on its
//! listener. This module must not import the core's logic (only its wire types) nor storage.

pub mod auth;
pub mod frame;
pub mod listener;
pub mod peer_link;
pub mod snapshot_frame;
pub mod stats;
pub mod tls_stream;
mod writer;

pub use auth::{ClusterSecret, ShortSecret};
pub use frame::{decode_frame, encode_frame, peer_codec, Frame, FrameError, PROTOCOL_VERSION};
pub use listener::{serve_peers, Inbound, InboundSink, ListenerError, PeerListenerConfig};
pub use peer_link::{PeerLink, PeerLinkConfig};
pub use snapshot_frame::{SnapshotBody, SnapshotFrame};
pub use stats::{LinkState, LinkStats, LinkStatsSnapshot};
pub use tls_stream::{PeerTls, PeerTlsError};
pub use writer::{CONNECT_TIMEOUT, INITIAL_BACKOFF, MAX_BACKOFF, WRITE_TIMEOUT};
