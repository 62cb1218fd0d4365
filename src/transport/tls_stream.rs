//! Mutual TLS on peer connections (`--peer-tls-ca/--peer-tls-cert/--peer-tls-key`): both ends
//! present a certificate chained to the cluster's CA, and each certificate names its node
//! (SAN URI `raftix://node/<id>`, see [`crate::tls`]). The listener binds the connection to the
//! id in the client's certificate (a Hello from another id is refused); the connecting side
//! checks that the listener's certificate names the node it meant to reach.

use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::core::types::NodeId;

/// A peer connection's byte stream: plain TCP or TLS.
pub trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerStream for T {}

/// A boxed peer stream.
pub type BoxedStream = Box<dyn PeerStream>;

/// The TLS settings of a node's peer transport.
#[derive(Clone)]
pub struct PeerTls {
    /// Listener side: requires a client certificate chained to the CA.
    pub server: Arc<ServerConfig>,
    /// Connecting side: trusts the CA, presents this node's certificate.
    pub client: Arc<ClientConfig>,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls(..)")
    }
}

/// Why a TLS peer connection was refused.
#[derive(Debug, thiserror::Error)]
pub enum PeerTlsError {
    /// The TLS handshake failed (no or untrusted certificate, wrong CA, bad name, ...).
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    /// The other side's certificate names no node or could not be read.
    #[error("peer certificate: {0}")]
    Certificate(String),
    /// The certificate names another node than expected.
    #[error("peer certificate is node {got}'s, expected node {expected}")]
    WrongNode {
        /// The id in the certificate.
        got: NodeId,
        /// The id expected.
        expected: NodeId,
    },
}

fn leaf_node_id(
    certs: Option<&[rustls::pki_types::CertificateDer<'static>]>,
) -> Result<NodeId, PeerTlsError> {
    let leaf = certs
        .and_then(|c| c.first())
        .ok_or_else(|| PeerTlsError::Certificate("no certificate presented".into()))?;
    crate::tls::node_id_of(leaf).map_err(|e| PeerTlsError::Certificate(e.to_string()))
}

/// Listener side: runs the TLS handshake; returns the stream and the node id of the client's
/// certificate.
pub async fn accept(
    stream: TcpStream,
    tls: &PeerTls,
) -> Result<(BoxedStream, NodeId), PeerTlsError> {
    let stream = TlsAcceptor::from(tls.server.clone())
        .accept(stream)
        .await
        .map_err(PeerTlsError::Handshake)?;
    let id = leaf_node_id(stream.get_ref().1.peer_certificates())?;
    Ok((Box::new(stream), id))
}

/// Connecting side: runs the TLS handshake with the node `expected` at `addr`.
pub async fn connect(
    stream: TcpStream,
    tls: &PeerTls,
    addr: &str,
    expected: NodeId,
) -> Result<BoxedStream, PeerTlsError> {
    let name =
        crate::tls::server_name_for(addr).map_err(|e| PeerTlsError::Certificate(e.to_string()))?;
    let stream = TlsConnector::from(tls.client.clone())
        .connect(name, stream)
        .await
        .map_err(PeerTlsError::Handshake)?;
    let got = leaf_node_id(stream.get_ref().1.peer_certificates())?;
    if got != expected {
        return Err(PeerTlsError::WrongNode { got, expected });
    }
    Ok(Box::new(stream))
}
