//! TLS for raftix (rustls with the `ring` provider): mutual TLS between peers, HTTPS on the
//! gateway, and the test certificates of `raftix certs`.
//!
//! - Peers ([`peer_server_config`], [`peer_client_config`]): both sides present a certificate
//!   chained to the cluster CA; the node id a certificate was issued to is in a SAN URI
//!   `raftix://node/<id>` ([`node_id_of`]), so a peer claiming another node's id is caught.
//! - Gateway ([`gateway_server_config`], [`http_client_config`]): HTTPS with optional or required
//!   client certificates ([`ClientAuth`]), and the client side used by the CLI and by nodes
//!   forwarding requests to the leader.
//! - [`certs`]: a test CA, node and client certificates (rcgen).
//!
//! Every configuration is built with [`provider`] (ring) explicitly: nothing depends on a
//! process-wide default crypto provider.

pub mod certs;
mod error;
mod gateway;
mod load;
mod node;
mod peer;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

pub use error::TlsError;
pub use gateway::{gateway_server_config, http_client_config, ClientAuth, ClientIdentity};
pub use load::{load_certs, load_key, load_roots};
pub use node::{log_gateway_tls, GatewayTls};
pub use peer::{
    cert_file_node_id, node_id_of, node_uri, peer_client_config, peer_server_config,
    server_name_for,
};

/// Prefix of the SAN URI that names the node a certificate was issued to:
/// `raftix://node/<id>`.
pub const NODE_URI_PREFIX: &str = "raftix://node/";

/// The certificate files of one node (or client): the CA it trusts, its certificate chain and
/// its private key, all PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate(s) the other side's certificate must chain to.
    pub ca: PathBuf,
    /// This side's certificate (chain), leaf first.
    pub cert: PathBuf,
    /// This side's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The crypto provider of every raftix TLS configuration: ring.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
