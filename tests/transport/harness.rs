//! What the transport tests share: a heartbeat envelope, and a peer listener whose delivered
//! and refused traffic the test reads from channels.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use raftix::core::types::{Envelope, NodeId};
use raftix::transport::{serve_peers, Inbound, PeerLinkConfig, PeerListenerConfig};
use tokio::net::TcpListener;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::time::timeout;

use crate::support::msg;

/// How long a test waits for something that must happen.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test watches for something that must not happen.
pub const QUIET: Duration = Duration::from_millis(400);

/// The next item of `rx`, or a panic after [`WAIT`].
pub async fn next<T>(rx: &mut UnboundedReceiver<T>) -> T {
    timeout(WAIT, rx.recv())
        .await
        .expect("timed out waiting")
        .expect("channel closed")
}

/// Panics if the listener delivers anything within [`QUIET`].
pub async fn assert_quiet(rx: &mut UnboundedReceiver<Inbound>, what: &str) {
    if let Ok(Some(item)) = timeout(QUIET, rx.recv()).await {
        panic!("{what}: the listener delivered {item:?}");
    }
}

/// A heartbeat of term 1 from `from` to `to` carrying `commit`.
pub fn heartbeat(from: NodeId, to: NodeId, commit: u64) -> Envelope {
    Envelope {
        from,
        to,
        msg: msg::heartbeat(1, commit, 0, 0),
    }
}

/// Node `local`'s link to `peer` at `addr`, in `cluster`: frames up to `max_frame_bytes`, a
/// queue of `queue_capacity` envelopes, the HTTP and peer addresses named after `local`, and
/// neither a cluster secret nor TLS (a test that wants them sets those fields).
pub fn link_config(
    cluster: &str,
    local: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    max_frame_bytes: usize,
    queue_capacity: usize,
) -> PeerLinkConfig {
    PeerLinkConfig {
        local_id: local,
        peer_id: peer,
        peer_addr: addr.to_string(),
        cluster: cluster.into(),
        http_addr: format!("http-of-{local}"),
        local_peer_addr: format!("peer-of-{local}"),
        max_frame_bytes,
        queue_capacity,
        secret: None,
        tls: None,
    }
}

/// A running peer listener: its address, what it delivered, and the reasons it refused.
pub struct Served {
    pub addr: SocketAddr,
    pub delivered: UnboundedReceiver<Inbound>,
    pub refused: UnboundedReceiver<&'static str>,
}

/// Serves peers with `cfg` on a fresh loopback port.
pub async fn serve(cfg: PeerListenerConfig) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, delivered) = unbounded_channel();
    let (refused_tx, refused) = unbounded_channel();
    let sink = Arc::new(move |inbound| {
        match inbound {
            Inbound::Refused { reason } => {
                let _ = refused_tx.send(reason);
            }
            other => {
                let _ = tx.send(other);
            }
        }
        None
    });
    actix_rt::spawn(serve_peers(listener, cfg, sink));
    Served {
        addr,
        delivered,
        refused,
    }
}
