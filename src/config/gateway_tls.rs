//! The HTTPS settings of the gateway (`tls_cert`, `tls_key`, `tls_client_ca`,
//! `tls_client_auth`, `tls_ca`): how they combine, and what they make of this node's address.
//!
//! - `tls_cert` + `tls_key`: the HTTP API and dashboard are served over HTTPS only. The node
//!   then tells its peers (and through them clients: redirects, `leader.url`, `/v1/cluster`'s
//!   `http_addr`) that it is at `https://<advertise_http>`.
//! - `tls_client_ca`: client certificates chained to it are asked for; `tls_client_auth` says
//!   whether they are `required` (the default with a client CA) or `optional`, or `none`.
//! - `tls_ca`: what this node trusts when it calls other nodes' gateways (forwarding to the
//!   leader, the dashboard's probes), presenting its own `tls_cert`; defaults to
//!   `tls_client_ca`, else the system's trust store.

use std::path::Path;

use super::{ClientAuth, ConfigError, NodeConfig};

/// Checks that the TLS settings fit together (the files themselves are read when the node
/// starts: see [`crate::server`]).
pub(super) fn check(c: &NodeConfig) -> Result<(), ConfigError> {
    let shown = |p: &Option<std::path::PathBuf>| {
        p.as_deref()
            .map(Path::display)
            .map(|d| d.to_string())
            .unwrap_or_default()
    };
    match (&c.tls_cert, &c.tls_key) {
        (Some(_), None) => {
            return Err(ConfigError::invalid(
                "tls_cert",
                shown(&c.tls_cert),
                "needs --tls-key (tls_key), the certificate's private key",
            ))
        }
        (None, Some(_)) => {
            return Err(ConfigError::invalid(
                "tls_key",
                shown(&c.tls_key),
                "needs --tls-cert (tls_cert), the certificate of the key",
            ))
        }
        _ => {}
    }
    if c.tls_cert.is_none() {
        let https_only = "only applies with --tls-cert and --tls-key (HTTPS on the gateway)";
        if c.tls_client_ca.is_some() {
            return Err(ConfigError::invalid(
                "tls_client_ca",
                shown(&c.tls_client_ca),
                https_only,
            ));
        }
        if let Some(auth) = c.tls_client_auth {
            return Err(ConfigError::invalid(
                "tls_client_auth",
                auth.as_str(),
                https_only,
            ));
        }
        if c.tls_ca.is_some() {
            return Err(ConfigError::invalid("tls_ca", shown(&c.tls_ca), https_only));
        }
    }
    let peer = [
        ("peer_tls_ca", &c.peer_tls_ca),
        ("peer_tls_cert", &c.peer_tls_cert),
        ("peer_tls_key", &c.peer_tls_key),
    ];
    if peer.iter().any(|(_, p)| p.is_some()) {
        if let Some((key, _)) = peer.iter().find(|(_, p)| p.is_none()) {
            return Err(ConfigError::invalid(
                key,
                String::new(),
                "peer mutual TLS needs all three of --peer-tls-ca, --peer-tls-cert and --peer-tls-key",
            ));
        }
    }
    if let Some(region) = &c.region {
        crate::regions::check_region_id(region)
            .map_err(|reason| ConfigError::invalid("region", region.clone(), &reason))?;
    }
    if c.tls_client_ca.is_none() {
        if let Some(auth @ (ClientAuth::Optional | ClientAuth::Required)) = c.tls_client_auth {
            return Err(ConfigError::invalid(
                "tls_client_auth",
                auth.as_str(),
                "needs --tls-client-ca (tls_client_ca), the CA client certificates must chain to",
            ));
        }
    }
    Ok(())
}

impl NodeConfig {
    /// Whether the gateway serves HTTPS (a certificate and key are configured).
    pub fn gateway_https(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// How the gateway treats client certificates: `tls_client_auth`, or `required` when a
    /// client CA is given, else `none`.
    pub fn client_auth(&self) -> ClientAuth {
        match (self.tls_client_auth, &self.tls_client_ca) {
            (Some(auth), _) => auth,
            (None, Some(_)) => ClientAuth::Required,
            (None, None) => ClientAuth::None,
        }
    }

    /// The CA this node trusts when it calls other nodes' gateways: `tls_ca`, else
    /// `tls_client_ca`; `None` means the system's trust store.
    pub fn gateway_trust_ca(&self) -> Option<&Path> {
        self.tls_ca.as_deref().or(self.tls_client_ca.as_deref())
    }

    /// The HTTP address this node hands to its peers (and so to clients in redirects,
    /// `leader.url` and `/v1/cluster`): [`advertise_http`](Self::advertise_http) as `host:port`
    /// for plain HTTP, `https://host:port` when the gateway serves HTTPS.
    pub fn published_http_addr(&self) -> String {
        if self.gateway_https() {
            format!("https://{}", self.advertise_http())
        } else {
            self.advertise_http().to_owned()
        }
    }

    /// The base URL of this node's gateway (`http://host:port` or `https://host:port`).
    pub fn http_base_url(&self) -> String {
        crate::http::url_of(&self.published_http_addr())
    }
}
