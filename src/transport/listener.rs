//! The accepting side of the peer transport: a TCP listener that validates every inbound
//! connection and hands the Raft messages it carries to a sink.
//!
//! Each connection must open with a [`Frame::Hello`] naming our cluster and our node id; after that
//! it may carry only [`Frame::Raft`] envelopes from the node that said hello, addressed to us. Any
//! malformed, oversized, unexpected or mismatched frame closes that one connection (with a `warn!`
//! naming the peer address and the reason); the listener keeps serving the others. This module
//! knows nothing of actors: the sink decides where messages go (typically `do_send` to the hub).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::codec::FramedRead;
use tracing::{debug, info, warn};

use super::frame::{decode_frame, peer_codec, Frame, FrameError};
use crate::core::types::{Envelope, NodeId};

/// How long a new connection may take to send its Hello before it is closed.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after an accept error that is not about one connection (e.g. out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Settings of the peer listener.
#[derive(Clone, Debug)]
pub struct PeerListenerConfig {
    /// Our node id; a Hello or envelope addressed to any other id is refused.
    pub node_id: NodeId,
    /// Our cluster name; a Hello naming another cluster is refused.
    pub cluster: String,
    /// Largest accepted frame in bytes (version byte included); a larger length prefix closes the
    /// connection.
    pub max_frame_bytes: usize,
}

/// What the listener delivers to its sink, in the order received on each connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A peer opened a valid connection; `http_addr` is where it serves clients.
    Hello {
        /// The peer's node id.
        from: NodeId,
        /// The peer's HTTP address, as it announced it.
        http_addr: String,
        /// The peer's own peer (Raft) address, as it announced it.
        peer_addr: String,
    },
    /// A validated Raft message from a peer that said hello on the same connection.
    Message(Envelope),
    /// A validated snapshot transfer frame from a peer that said hello on the same connection.
    Snapshot(super::snapshot_frame::SnapshotFrame),
}

/// Receives everything the listener accepts. Called from the listener's connection tasks: it must
/// not block (send to an actor with `do_send`, or into a channel).
pub type InboundSink = Arc<dyn Fn(Inbound) + Send + Sync>;

/// Why the listener stopped.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// `accept` failed in a way that retrying cannot fix (e.g. the socket is not listening).
    #[error("peer listener failed: {0}")]
    Accept(#[source] io::Error),
}

/// Why one inbound connection was closed.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error("no Hello within {0:?}")]
    HelloTimeout(Duration),
    #[error("connection closed before Hello")]
    ClosedBeforeHello,
    #[error("first frame is not a Hello")]
    MissingHello,
    #[error("second Hello on the same connection")]
    DuplicateHello,
    #[error("Hello for cluster {got:?}, we are {expected:?}")]
    WrongCluster { got: String, expected: String },
    #[error("frame addressed to node {got}, we are node {expected}")]
    WrongDestination { got: NodeId, expected: NodeId },
    #[error("envelope from node {got} on the connection of node {expected}")]
    WrongSender { got: NodeId, expected: NodeId },
}

/// Serves peer connections on `listener` until accepting fails fatally.
///
/// Connection tasks are owned by this future: dropping it (or aborting the task running it)
/// closes every connection it accepted. Start it from inside an actix `System` with
/// `actix_rt::spawn(serve_peers(listener, cfg, sink))`; it also runs on any tokio runtime.
pub async fn serve_peers(
    listener: TcpListener,
    cfg: PeerListenerConfig,
    sink: InboundSink,
) -> Result<(), ListenerError> {
    let cfg = Arc::new(cfg);
    if let Ok(addr) = listener.local_addr() {
        info!(node = cfg.node_id, %addr, "peer listener serving");
    }
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next() => continue,
        };
        match accepted {
            Ok((stream, peer)) => {
                connections.spawn(serve_connection(stream, peer, cfg.clone(), sink.clone()));
            }
            Err(e) if is_per_connection(&e) => {
                debug!(node = cfg.node_id, error = %e, "accept: connection failed early");
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                return Err(ListenerError::Accept(e));
            }
            Err(e) => {
                warn!(node = cfg.node_id, error = %e, "accept failed, pausing");
                actix::clock::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// Accept errors that concern only the connection being accepted.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
    )
}

/// Runs one connection to completion, logging why it ended.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    cfg: Arc<PeerListenerConfig>,
    sink: InboundSink,
) {
    let _ = stream.set_nodelay(true);
    match read_frames(stream, &cfg, &sink).await {
        Ok(from) => debug!(node = cfg.node_id, %peer, from, "peer connection closed"),
        Err(reason) => warn!(node = cfg.node_id, %peer, %reason, "closing peer connection"),
    }
}

/// Reads and validates frames until the peer closes the connection (`Ok`, with the peer's id) or
/// a frame is refused (`Err`). Dropping the stream closes the connection.
async fn read_frames(
    stream: TcpStream,
    cfg: &PeerListenerConfig,
    sink: &InboundSink,
) -> Result<NodeId, ConnectionError> {
    let mut frames = FramedRead::new(stream, peer_codec(cfg.max_frame_bytes));
    let first = actix::clock::timeout(HELLO_TIMEOUT, frames.next())
        .await
        .map_err(|_| ConnectionError::HelloTimeout(HELLO_TIMEOUT))?
        .ok_or(ConnectionError::ClosedBeforeHello)??;
    let peer_id = match decode_frame(&first, cfg.max_frame_bytes)? {
        Frame::Hello {
            cluster,
            from,
            to,
            http_addr,
            peer_addr,
        } => {
            if cluster != cfg.cluster {
                return Err(ConnectionError::WrongCluster {
                    got: cluster,
                    expected: cfg.cluster.clone(),
                });
            }
            check_destination(to, cfg)?;
            sink(Inbound::Hello {
                from,
                http_addr,
                peer_addr,
            });
            from
        }
        Frame::Raft(_) | Frame::Snapshot(_) => return Err(ConnectionError::MissingHello),
    };
    while let Some(bytes) = frames.next().await {
        match decode_frame(&bytes?, cfg.max_frame_bytes)? {
            Frame::Raft(env) => {
                if env.from != peer_id {
                    return Err(ConnectionError::WrongSender {
                        got: env.from,
                        expected: peer_id,
                    });
                }
                check_destination(env.to, cfg)?;
                sink(Inbound::Message(env));
            }
            Frame::Snapshot(frame) => {
                if frame.from != peer_id {
                    return Err(ConnectionError::WrongSender {
                        got: frame.from,
                        expected: peer_id,
                    });
                }
                check_destination(frame.to, cfg)?;
                sink(Inbound::Snapshot(frame));
            }
            Frame::Hello { .. } => return Err(ConnectionError::DuplicateHello),
        }
    }
    Ok(peer_id)
}

fn check_destination(to: NodeId, cfg: &PeerListenerConfig) -> Result<(), ConnectionError> {
    if to == cfg.node_id {
        Ok(())
    } else {
        Err(ConnectionError::WrongDestination {
            got: to,
            expected: cfg.node_id,
        })
    }
}
