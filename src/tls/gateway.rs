//! HTTPS on the gateway: the server configuration (optional or required client certificates)
//! and the client configuration of everything that calls a node's HTTP API (the CLI, a follower
//! forwarding to the leader, the dashboard's probes of the other nodes).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use serde::Deserialize;

use super::load::{load_certs, load_key, load_roots};
use super::{provider, TlsError};

/// How the HTTPS gateway treats client certificates (`--tls-client-auth`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// Client certificates are not asked for.
    #[default]
    None,
    /// A client may present a certificate; one that does not chain to the client CA fails the
    /// handshake, no certificate at all is accepted (bearer tokens, if configured, still apply).
    Optional,
    /// Every client must present a certificate chained to the client CA, or the handshake fails.
    Required,
}

impl ClientAuth {
    /// The flag value (`none`, `optional`, `required`).
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::None => "none",
            ClientAuth::Optional => "optional",
            ClientAuth::Required => "required",
        }
    }
}

/// A certificate and key a client presents (PEM files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The certificate (chain), leaf first.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// The gateway's HTTPS server configuration: presents `cert` (with `key`); asks for client
/// certificates chained to `client_ca` as `auth` says. `optional` and `required` need a
/// `client_ca`; with `none` it is not used.
pub fn gateway_server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    auth: ClientAuth,
) -> Result<ServerConfig, TlsError> {
    let chain = load_certs(cert, "certificate")?;
    let private = load_key(key)?;
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match (auth, client_ca) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (_, None) => {
            return Err(TlsError::Invalid(format!(
                "client certificate auth `{}` needs a client CA (--tls-client-ca)",
                auth.as_str()
            )))
        }
        (_, Some(ca)) => {
            let roots = Arc::new(load_roots(ca)?);
            let mut verifier = WebPkiClientVerifier::builder_with_provider(roots, provider());
            if auth == ClientAuth::Optional {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier.build().map_err(|e| TlsError::Ca {
                path: ca.to_owned(),
                reason: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(chain, private)
        .map_err(|source| TlsError::CertKey {
            cert: cert.to_owned(),
            key: key.to_owned(),
            source,
        })
}

/// The client side of HTTPS calls to a gateway: trusts `ca` (or, without one, the system's
/// trust store) and presents `identity` when given (for gateways that ask for client
/// certificates).
pub fn http_client_config(
    ca: Option<&Path>,
    identity: Option<&ClientIdentity>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = match ca {
        Some(ca) => load_roots(ca)?,
        None => system_roots(),
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(id) => {
            let chain = load_certs(&id.cert, "client certificate")?;
            let key = load_key(&id.key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|source| TlsError::CertKey {
                    cert: id.cert.clone(),
                    key: id.key.clone(),
                    source,
                })?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The system's trust store (those of its certificates that can be used; errors are logged).
fn system_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for err in &found.errors {
        tracing::debug!("system trust store: {err}");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    tracing::debug!(added, ignored, "system trust store loaded");
    roots
}
