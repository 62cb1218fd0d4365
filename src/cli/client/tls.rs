//! HTTPS for the client subcommands (and for `serve --join`): which CA to trust and which
//! client certificate to present.

use std::path::PathBuf;

use clap::Args;
use reqwest::blocking::ClientBuilder;

use super::error::ClientError;
use crate::tls::{http_client_config, ClientIdentity};

/// TLS flags of every client subcommand. Without any, `https://` endpoints are verified
/// against the system's trust store and no client certificate is presented.
#[derive(Clone, Debug, Default, PartialEq, Eq, Args)]
pub struct ClientTls {
    /// CA certificate (PEM) that https:// endpoints' certificates must chain to (for example
    /// the ca.pem of `raftix certs`) [default: the system's trust store].
    #[arg(long, env = "RAFTIX_CACERT", value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM) to present to nodes that ask for one; needs --key.
    #[arg(
        long = "cert",
        id = "tls_cert",
        env = "RAFTIX_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(
        long = "key",
        id = "tls_key",
        env = "RAFTIX_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub key: Option<PathBuf>,
}

impl ClientTls {
    /// The settings of the `RAFTIX_CACERT`, `RAFTIX_CERT` and `RAFTIX_KEY` environment variables
    /// (for sessions that have no flags of their own).
    pub fn from_env() -> Self {
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self {
            cacert: var("RAFTIX_CACERT"),
            cert: var("RAFTIX_CERT"),
            key: var("RAFTIX_KEY"),
        }
    }

    /// Whether a CA or a client certificate is given.
    pub fn is_set(&self) -> bool {
        self.cacert.is_some() || self.cert.is_some() || self.key.is_some()
    }

    /// `builder` set up for HTTPS with these settings, when they are given or an endpoint is
    /// `https://`; otherwise unchanged (plain HTTP needs no TLS setup).
    pub fn apply(
        &self,
        builder: ClientBuilder,
        endpoints: &[String],
    ) -> Result<ClientBuilder, ClientError> {
        let https = endpoints.iter().any(|e| e.starts_with("https://"));
        if !self.is_set() && !https {
            return Ok(builder);
        }
        let identity =
            match (&self.cert, &self.key) {
                (Some(cert), Some(key)) => Some(ClientIdentity {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                (None, None) => None,
                _ => return Err(ClientError::Setup(
                    "a client certificate needs both --cert (RAFTIX_CERT) and --key (RAFTIX_KEY)"
                        .into(),
                )),
            };
        let config = http_client_config(self.cacert.as_deref(), identity.as_ref())
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(builder.use_preconfigured_tls((*config).clone()))
    }
}
