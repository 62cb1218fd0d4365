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

use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::{debug, info, warn};

use super::auth::{fresh_nonce, ClusterSecret, Handshake, OpenError, TAG_LEN};
use super::frame::{decode_frame, encode_frame, peer_codec, Frame, FrameError};
use crate::core::types::{Envelope, NodeId};

/// How long a new connection may take to send its Hello (and, with a cluster secret, to finish
/// the handshake) before it is closed.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the listener's Challenge may take to reach the kernel.
const CHALLENGE_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Shortest interval between two warnings about refused connections.
const LIMIT_WARN_EVERY: Duration = Duration::from_secs(10);

/// Pause after an accept error that is not about one connection (e.g. out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Settings of the peer listener.
#[derive(Clone, Debug)]
pub struct PeerListenerConfig {
    /// Our node id; a Hello or envelope addressed to any other id is refused.
    pub node_id: NodeId,
    /// Our cluster name; a Hello naming another cluster is refused.
    pub cluster: String,
    /// Largest accepted frame in bytes (version byte included, authentication tag excluded); a
    /// larger length prefix closes the connection.
    pub max_frame_bytes: usize,
    /// The cluster secret: when set, every connection must complete the challenge-response
    /// handshake and authenticate every frame (see [`super::auth`]); when unset, a peer that
    /// offers the handshake is refused (the two ends are configured differently).
    pub secret: Option<ClusterSecret>,
    /// Mutual TLS: when set, every connection must complete a TLS handshake with a client
    /// certificate chained to the cluster CA, and its Hello must come from the node the
    /// certificate names (see [`super::tls_stream`]).
    pub tls: Option<super::tls_stream::PeerTls>,
    /// Most inbound connections open at once; more are closed at once.
    pub max_connections: usize,
    /// Most inbound connections still in their Hello/handshake at once, so that strangers cannot
    /// take every connection slot; more are closed at once.
    pub max_handshakes: usize,
    /// Most messages of one connection handed to the sink and not yet processed: beyond it the
    /// connection stops reading, and TCP slows that peer down (a flooding peer degrades itself,
    /// not the node's memory).
    pub max_pending_per_connection: usize,
}

impl PeerListenerConfig {
    /// Settings with the default limits and no cluster secret.
    pub fn new(node_id: NodeId, cluster: String, max_frame_bytes: usize) -> Self {
        Self {
            node_id,
            cluster,
            max_frame_bytes,
            secret: None,
            tls: None,
            max_connections: DEFAULT_MAX_PEER_CONNECTIONS,
            max_handshakes: DEFAULT_MAX_PEER_HANDSHAKES,
            max_pending_per_connection: DEFAULT_MAX_PENDING_PER_CONNECTION,
        }
    }
}

/// Default of [`PeerListenerConfig::max_connections`].
pub const DEFAULT_MAX_PEER_CONNECTIONS: usize = 128;
/// Default of [`PeerListenerConfig::max_handshakes`].
pub const DEFAULT_MAX_PEER_HANDSHAKES: usize = 16;
/// Default of [`PeerListenerConfig::max_pending_per_connection`].
pub const DEFAULT_MAX_PENDING_PER_CONNECTION: usize = 256;

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
    /// A connection was refused (for metrics; the listener logs it): `reason` is one of
    /// `"auth"` (handshake failed or missing), `"forged_frame"` (bad authentication tag),
    /// `"connection_limit"`, `"bad_frame"` (malformed, misaddressed or unexpected frame).
    Refused {
        /// Why.
        reason: &'static str,
    },
}

/// Receives everything the listener accepts. Called from the listener's connection tasks: it must
/// not block. It returns a future that completes once the item is processed (e.g. an actor's
/// `send`), or `None` when there is nothing to wait for; a connection keeps at most
/// [`PeerListenerConfig::max_pending_per_connection`] of these futures pending.
pub type InboundSink = Arc<dyn Fn(Inbound) -> Option<Processed> + Send + Sync>;

/// Completes when the sink processed an item.
pub type Processed = futures::future::BoxFuture<'static, ()>;

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
    #[error("handshake frame after the handshake")]
    UnexpectedHandshake,
    #[error("peer did not offer the cluster-secret handshake (is its cluster secret configured?)")]
    NoHandshake,
    #[error("peer offered the cluster-secret handshake but this node has no cluster secret")]
    UnexpectedSecret,
    #[error(
        "peer failed to prove it holds the cluster secret (wrong secret, or a replayed handshake)"
    )]
    BadProof,
    #[error("expected the handshake's Auth frame")]
    MissingAuth,
    #[error("sending the Challenge failed: {0}")]
    Challenge(String),
    #[error("{0}")]
    Forged(#[from] OpenError),
    #[error("{0}")]
    Tls(#[from] super::tls_stream::PeerTlsError),
    #[error("Hello from node {hello} over a TLS connection whose certificate is node {cert}'s")]
    CertificateMismatch { hello: NodeId, cert: NodeId },
}

impl ConnectionError {
    /// The reason reported in [`Inbound::Refused`], or `None` for an ordinary end.
    fn refusal(&self) -> Option<&'static str> {
        match self {
            ConnectionError::Io(_) | ConnectionError::Challenge(_) => None,
            ConnectionError::HelloTimeout(_)
            | ConnectionError::ClosedBeforeHello
            | ConnectionError::NoHandshake
            | ConnectionError::UnexpectedSecret
            | ConnectionError::BadProof
            | ConnectionError::MissingAuth
            | ConnectionError::Tls(_)
            | ConnectionError::CertificateMismatch { .. } => Some("auth"),
            ConnectionError::Forged(_) => Some("forged_frame"),
            _ => Some("bad_frame"),
        }
    }
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
        info!(node = cfg.node_id, %addr, authenticated = cfg.secret.is_some(), "peer listener serving");
    }
    let handshakes = Arc::new(tokio::sync::Semaphore::new(cfg.max_handshakes.max(1)));
    let mut connections = JoinSet::new();
    let mut refused_since_warning = 0u64;
    let mut last_warning: Option<actix::clock::Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next() => continue,
        };
        match accepted {
            Ok((stream, peer)) => {
                let slot = handshakes.clone().try_acquire_owned().ok();
                let (Some(slot), true) = (slot, connections.len() < cfg.max_connections) else {
                    drop(stream);
                    sink(Inbound::Refused {
                        reason: "connection_limit",
                    });
                    refused_since_warning += 1;
                    if last_warning.is_none_or(|at| at.elapsed() >= LIMIT_WARN_EVERY) {
                        warn!(
                            node = cfg.node_id,
                            %peer,
                            refused = refused_since_warning,
                            open = connections.len(),
                            "peer connection limit reached: closing new connections (max {} open, {} in handshake)",
                            cfg.max_connections,
                            cfg.max_handshakes
                        );
                        last_warning = Some(actix::clock::Instant::now());
                        refused_since_warning = 0;
                    }
                    continue;
                };
                connections.spawn(serve_connection(
                    stream,
                    peer,
                    cfg.clone(),
                    sink.clone(),
                    slot,
                ));
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
    handshake_slot: tokio::sync::OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let served = match &cfg.tls {
        Some(tls) => {
            match actix::clock::timeout(HELLO_TIMEOUT, super::tls_stream::accept(stream, tls)).await
            {
                Ok(Ok((stream, cert_id))) => {
                    read_frames(stream, &cfg, &sink, handshake_slot, Some(cert_id)).await
                }
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Err(ConnectionError::HelloTimeout(HELLO_TIMEOUT)),
            }
        }
        None => read_frames(stream, &cfg, &sink, handshake_slot, None).await,
    };
    match served {
        Ok(from) => debug!(node = cfg.node_id, %peer, from, "peer connection closed"),
        Err(reason) => {
            if let Some(refusal) = reason.refusal() {
                sink(Inbound::Refused { reason: refusal });
            }
            warn!(node = cfg.node_id, %peer, %reason, "closing peer connection");
        }
    }
}

/// Reads and validates frames until the peer closes the connection (`Ok`, with the peer's id) or
/// a frame is refused (`Err`). Dropping the stream closes the connection.
async fn read_frames<S>(
    stream: S,
    cfg: &PeerListenerConfig,
    sink: &InboundSink,
    handshake_slot: tokio::sync::OwnedSemaphorePermit,
    cert_id: Option<NodeId>,
) -> Result<NodeId, ConnectionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (read, write) = tokio::io::split(stream);
    let tag_len = if cfg.secret.is_some() { TAG_LEN } else { 0 };
    let codec = peer_codec(cfg.max_frame_bytes + tag_len);
    let mut frames = FramedRead::new(read, codec.clone());
    let greeting = actix::clock::timeout(HELLO_TIMEOUT, async {
        let first = frames
            .next()
            .await
            .ok_or(ConnectionError::ClosedBeforeHello)??;
        let Frame::Hello {
            cluster,
            from,
            to,
            http_addr,
            peer_addr,
            nonce,
        } = decode_frame(&first, cfg.max_frame_bytes)?
        else {
            return Err(ConnectionError::MissingHello);
        };
        if cluster != cfg.cluster {
            return Err(ConnectionError::WrongCluster {
                got: cluster,
                expected: cfg.cluster.clone(),
            });
        }
        check_destination(to, cfg)?;
        if let Some(cert) = cert_id.filter(|&cert| cert != from) {
            return Err(ConnectionError::CertificateMismatch { hello: from, cert });
        }
        let opener = match (&cfg.secret, nonce) {
            (Some(secret), Some(_)) => {
                let mine = fresh_nonce();
                let handshake = Handshake::new(&first, &mine);
                let challenge = encode_frame(&Frame::Challenge {
                    nonce: mine,
                    proof: handshake.listener_proof(secret),
                })?;
                let mut out = FramedWrite::new(write, codec.clone());
                actix::clock::timeout(CHALLENGE_WRITE_TIMEOUT, out.send(challenge))
                    .await
                    .map_err(|_| ConnectionError::Challenge("timed out".into()))?
                    .map_err(|e| ConnectionError::Challenge(e.to_string()))?;
                let answer = frames.next().await.ok_or(ConnectionError::MissingAuth)??;
                let Frame::Auth { proof } = decode_frame(&answer, cfg.max_frame_bytes)? else {
                    return Err(ConnectionError::MissingAuth);
                };
                if !Handshake::proof_matches(&handshake.connector_proof(secret), &proof) {
                    return Err(ConnectionError::BadProof);
                }
                Some(handshake.opener(secret))
            }
            (Some(_), None) => return Err(ConnectionError::NoHandshake),
            (None, Some(_)) => return Err(ConnectionError::UnexpectedSecret),
            (None, None) => None,
        };
        Ok((from, http_addr, peer_addr, opener))
    })
    .await
    .map_err(|_| ConnectionError::HelloTimeout(HELLO_TIMEOUT))??;
    drop(handshake_slot);
    let (peer_id, http_addr, peer_addr, mut opener) = greeting;
    sink(Inbound::Hello {
        from: peer_id,
        http_addr,
        peer_addr,
    });
    let mut pending = FuturesUnordered::new();
    let limit = cfg.max_pending_per_connection.max(1);
    loop {
        // Back-pressure: while the sink has `limit` items of this connection in hand, stop
        // reading (the peer's writes then stall in TCP).
        while pending.len() >= limit {
            pending.next().await;
        }
        let next = tokio::select! {
            next = frames.next() => next,
            Some(()) = pending.next(), if !pending.is_empty() => continue,
        };
        let Some(bytes) = next else { break };
        let bytes = bytes?;
        let body = match opener.as_mut() {
            Some(opener) => opener.open(&bytes)?,
            None => &bytes[..],
        };
        let inbound = match decode_frame(body, cfg.max_frame_bytes)? {
            Frame::Raft(env) => {
                if env.from != peer_id {
                    return Err(ConnectionError::WrongSender {
                        got: env.from,
                        expected: peer_id,
                    });
                }
                check_destination(env.to, cfg)?;
                Inbound::Message(env)
            }
            Frame::Snapshot(frame) => {
                if frame.from != peer_id {
                    return Err(ConnectionError::WrongSender {
                        got: frame.from,
                        expected: peer_id,
                    });
                }
                check_destination(frame.to, cfg)?;
                Inbound::Snapshot(frame)
            }
            Frame::Hello { .. } => return Err(ConnectionError::DuplicateHello),
            Frame::Challenge { .. } | Frame::Auth { .. } => {
                return Err(ConnectionError::UnexpectedHandshake)
            }
        };
        if let Some(processed) = sink(inbound) {
            pending.push(processed);
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
