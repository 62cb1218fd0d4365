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

/// Logs how the gateway is served: HTTPS and its client certificate mode, and a warning when
/// calls to other nodes would trust only the system's CAs (a cluster on `raftix certs`
/// certificates then needs `--tls-ca`).
pub fn log_gateway_tls(config: &NodeConfig) {
    if !config.gateway_https() {
        return;
    }
    tracing::info!(
        client_auth = config.client_auth().as_str(),
        "the HTTP API and dashboard are served over HTTPS only"
    );
    if config.gateway_trust_ca().is_none() {
        tracing::warn!(
            "no --tls-ca (nor --tls-client-ca): calls to other nodes' HTTPS gateways (forwarding to the leader, the dashboard's view of the cluster) trust the system's CAs only; give --tls-ca with certificates of a private CA such as those of `raftix certs`"
        );
    }
}
