//! The connection loop of a [`PeerLink`](super::PeerLink): connect, say Hello, drain the two
//! queues onto the socket (control before bulk), and reconnect with jittered exponential backoff.
//!
//! It runs as a task spawned on the link actor's arbiter, and is aborted (closing the socket) when
//! the actor stops. It never blocks the actor: the actor only
//! `try_send`s already-encoded frames into the bounded queues.

use std::sync::Arc;
use std::time::Duration;

use actix::clock::{sleep, timeout, Instant};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{error::TryRecvError, Receiver};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};
use tracing::{debug, info, warn};

use super::auth::{fresh_nonce, FrameSealer, Handshake, TAG_LEN};
use super::frame::{decode_frame, encode_frame, peer_codec, Frame};
use super::peer_link::PeerLinkConfig;
use super::stats::{LinkState, LinkStats};

/// First reconnect delay; doubles after each failure up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(20);
/// Longest reconnect delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long a TCP connect (name resolution included) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one batch of frames may take to reach the kernel before the connection is declared
/// dead (the peer stopped reading).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most frames written between two flushes.
const MAX_BATCH: usize = 64;

/// The receiving ends of a link's two queues.
pub(crate) struct Queues {
    /// Heartbeats, votes, responses and empty appends: always written first.
    pub(crate) control: Receiver<Bytes>,
    /// Appends that carry entries.
    pub(crate) bulk: Receiver<Bytes>,
    /// Cuts a reconnect backoff short (the peer was heard from: it is back).
    pub(crate) wake: std::sync::Arc<tokio::sync::Notify>,
}

impl Queues {
    /// Empties both queues, counting their frames as dropped (they are stale once the link failed).
    fn drop_all(&mut self, stats: &LinkStats) {
        let mut n = 0;
        while self.control.try_recv().is_ok() {
            n += 1;
        }
        while self.bulk.try_recv().is_ok() {
            n += 1;
        }
        stats.add_dropped(n);
    }

    /// Takes the next ready frame, control first.
    fn try_next(&mut self) -> Option<Bytes> {
        match self.control.try_recv() {
            Ok(frame) => Some(frame),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => self.bulk.try_recv().ok(),
        }
    }
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot encode Hello: {0}")]
    Hello(#[from] super::frame::FrameError),
    #[error("peer closed the connection")]
    PeerClosed,
    #[error("peer sent data on a send-only connection")]
    UnexpectedData,
    #[error("write stalled for {0:?}")]
    WriteTimeout(Duration),
    #[error("link queues closed")]
    QueuesClosed,
    #[error("peer did not complete the cluster-secret handshake: {0}")]
    Handshake(String),
    #[error("peer failed to prove it holds the cluster secret (wrong secret, or not a peer)")]
    PeerNotAuthenticated,
    #[error("{0}")]
    Tls(#[from] super::tls_stream::PeerTlsError),
}

/// The reading half of a connection (plain TCP or TLS).
pub(crate) type ReadHalf = Box<dyn AsyncRead + Unpin + Send>;
/// The writing half of a connection, framed.
pub(crate) type FramedWriteHalf =
    FramedWrite<Box<dyn AsyncWrite + Unpin + Send>, LengthDelimitedCodec>;

/// Runs the link until its queues close (the actor is gone) or the future is dropped.
pub(crate) async fn run(cfg: Arc<PeerLinkConfig>, stats: Arc<LinkStats>, mut queues: Queues) {
    let mut backoff = INITIAL_BACKOFF;
    let mut failed_before = false;
    loop {
        stats.set_state(LinkState::Connecting);
        let reason = match connect(&cfg).await {
            Ok((read, write, sealer)) => {
                stats.add_connects(1);
                if failed_before {
                    stats.add_reconnects(1);
                    info!(node = cfg.local_id, peer = cfg.peer_id, addr = %cfg.peer_addr, "peer link reconnected");
                }
                stats.set_state(LinkState::Connected);
                let since = Instant::now();
                let reason = pump(read, write, sealer, &stats, &mut queues).await;
                if since.elapsed() >= MAX_BACKOFF {
                    backoff = INITIAL_BACKOFF;
                }
                if matches!(reason, LinkError::QueuesClosed) {
                    return;
                }
                warn!(node = cfg.local_id, peer = cfg.peer_id, addr = %cfg.peer_addr, %reason, "peer link lost");
                reason
            }
            Err(reason) => {
                stats.add_connect_failures(1);
                if !failed_before {
                    warn!(node = cfg.local_id, peer = cfg.peer_id, addr = %cfg.peer_addr, %reason, "peer link cannot connect, retrying");
                }
                reason
            }
        };
        failed_before = true;
        stats.set_state(LinkState::Backoff);
        queues.drop_all(&stats);
        let delay = jittered(backoff);
        debug!(node = cfg.local_id, peer = cfg.peer_id, %reason, ?delay, "peer link backing off");
        let woken = tokio::select! {
            _ = sleep(delay) => false,
            _ = queues.wake.notified() => true,
        };
        if woken {
            backoff = INITIAL_BACKOFF;
            continue;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A delay drawn uniformly from `[backoff / 2, backoff]`, so that links do not retry in lockstep.
fn jittered(backoff: Duration) -> Duration {
    let max = u64::try_from(backoff.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rand::random_range(max / 2..=max))
}

/// Opens a connection, sends the Hello frame and, with a cluster secret, runs the handshake
/// (see [`super::auth`]): the sealer it returns authenticates every later frame.
async fn connect(
    cfg: &PeerLinkConfig,
) -> Result<(ReadHalf, FramedWriteHalf, Option<FrameSealer>), LinkError> {
    let stream = timeout(CONNECT_TIMEOUT, TcpStream::connect(cfg.peer_addr.as_str()))
        .await
        .map_err(|_| LinkError::ConnectTimeout(CONNECT_TIMEOUT))??;
    stream.set_nodelay(true)?;
    let (read, write): (ReadHalf, Box<dyn AsyncWrite + Unpin + Send>) = match &cfg.tls {
        Some(tls) => {
            let tls = timeout(
                CONNECT_TIMEOUT,
                super::tls_stream::connect(stream, tls, &cfg.peer_addr, cfg.peer_id),
            )
            .await
            .map_err(|_| LinkError::ConnectTimeout(CONNECT_TIMEOUT))??;
            let (read, write) = tokio::io::split(tls);
            (Box::new(read), Box::new(write))
        }
        None => {
            let (read, write) = stream.into_split();
            (Box::new(read), Box::new(write))
        }
    };
    let tag_len = if cfg.secret.is_some() { TAG_LEN } else { 0 };
    let codec = peer_codec(cfg.max_frame_bytes + tag_len);
    let mut write: FramedWriteHalf = FramedWrite::new(write, codec.clone());
    let hello = encode_frame(&Frame::Hello {
        cluster: cfg.cluster.clone(),
        from: cfg.local_id,
        to: cfg.peer_id,
        http_addr: cfg.http_addr.clone(),
        peer_addr: cfg.local_peer_addr.clone(),
        nonce: cfg.secret.as_ref().map(|_| fresh_nonce()),
    })?;
    timeout(WRITE_TIMEOUT, write.send(hello.clone()))
        .await
        .map_err(|_| LinkError::WriteTimeout(WRITE_TIMEOUT))??;
    let Some(secret) = &cfg.secret else {
        return Ok((read, write, None));
    };
    let mut frames = FramedRead::new(read, codec);
    let challenge = timeout(CONNECT_TIMEOUT, frames.next())
        .await
        .map_err(|_| LinkError::Handshake("no Challenge in time".into()))?
        .ok_or_else(|| {
            LinkError::Handshake("connection closed instead of a Challenge (does the peer have the same cluster secret?)".into())
        })??;
    let Frame::Challenge { nonce, proof } = decode_frame(&challenge, cfg.max_frame_bytes)
        .map_err(|e| LinkError::Handshake(e.to_string()))?
    else {
        return Err(LinkError::Handshake("expected a Challenge".into()));
    };
    let handshake = Handshake::new(&hello, &nonce);
    if !Handshake::proof_matches(&handshake.listener_proof(secret), &proof) {
        return Err(LinkError::PeerNotAuthenticated);
    }
    if !frames.read_buffer().is_empty() {
        return Err(LinkError::UnexpectedData);
    }
    let auth = encode_frame(&Frame::Auth {
        proof: handshake.connector_proof(secret),
    })?;
    timeout(WRITE_TIMEOUT, write.send(auth))
        .await
        .map_err(|_| LinkError::WriteTimeout(WRITE_TIMEOUT))??;
    Ok((frames.into_inner(), write, Some(handshake.sealer(secret))))
}

/// Moves frames from the queues to the socket until the connection fails.
///
/// The biased `select!` polls control before bulk, and each batch refills control-first, so a
/// heartbeat or vote waits behind at most the frames already handed to the socket.
async fn pump(
    mut read: ReadHalf,
    mut write: FramedWriteHalf,
    mut sealer: Option<FrameSealer>,
    stats: &LinkStats,
    queues: &mut Queues,
) -> LinkError {
    let mut probe = [0u8; 1];
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let first = tokio::select! {
            biased;
            read = read.read(&mut probe) => return match read {
                Ok(0) => LinkError::PeerClosed,
                Ok(_) => LinkError::UnexpectedData,
                Err(e) => LinkError::Io(e),
            },
            frame = queues.control.recv() => frame,
            frame = queues.bulk.recv() => frame,
        };
        let Some(first) = first else {
            return LinkError::QueuesClosed;
        };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queues.try_next() {
                Some(frame) => batch.push(frame),
                None => break,
            }
        }
        let count = batch.len() as u64;
        let bytes: u64 = batch.iter().map(|f| f.len() as u64 + 4).sum();
        let written = timeout(WRITE_TIMEOUT, async {
            for frame in batch.drain(..) {
                let frame = match sealer.as_mut() {
                    Some(sealer) => sealer.seal(&frame),
                    None => frame,
                };
                write.feed(frame).await?;
            }
            SinkExt::<Bytes>::flush(&mut write).await
        })
        .await;
        batch.clear();
        match written {
            Ok(Ok(())) => {
                stats.add_sent(count);
                stats.add_bytes_sent(bytes);
            }
            Ok(Err(e)) => {
                stats.add_dropped(count);
                return LinkError::Io(e);
            }
            Err(_) => {
                stats.add_dropped(count);
                return LinkError::WriteTimeout(WRITE_TIMEOUT);
            }
        }
    }
}
