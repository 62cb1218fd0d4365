//! The gateway TLS of one node, loaded from its [`NodeConfig`].

use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};

use super::{gateway_server_config, http_client_config, ClientIdentity, TlsError};
use crate::config::NodeConfig;

/// What a node needs to serve HTTPS and to call other nodes' HTTPS gateways.
#[derive(Clone, Debug, Default)]
pub struct GatewayTls {
    /// The HTTPS server configuration (`None`: plain HTTP).
    pub server: Option<ServerConfig>,
    /// The client configuration for calls to other nodes (`None`: plain HTTP): trusts
    /// [`NodeConfig::gateway_trust_ca`] and presents the node's own certificate.
    pub client: Option<Arc<ClientConfig>>,
}

impl GatewayTls {
    /// Reads the certificate, key and CA files of `config`; plain HTTP when it has no
    /// `tls_cert`. The error names the file at fault.
    pub fn load(config: &NodeConfig) -> Result<Self, TlsError> {
        let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
            return Ok(Self::default());
        };
        let server = gateway_server_config(
            cert,
            key,
            config.tls_client_ca.as_deref(),
            config.client_auth(),
        )?;
        let identity = ClientIdentity {
            cert: cert.clone(),
            key: key.clone(),
        };
        let client = http_client_config(config.gateway_trust_ca(), Some(&identity))?;
        Ok(Self {
            server: Some(server),
            client: Some(client),
        })
    }
}
