//! Mutual TLS between peers: both sides present a certificate chained to the cluster CA, and a
//! certificate names the node it was issued to in a SAN URI `raftix://node/<id>`.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig};
use x509_parser::extensions::GeneralName;

use super::load::{load_certs, load_key, load_roots};
use super::{provider, TlsError, TlsFiles, NODE_URI_PREFIX};
use crate::core::NodeId;

/// The SAN URI naming node `id`: `raftix://node/<id>`.
pub fn node_uri(id: NodeId) -> String {
    format!("{NODE_URI_PREFIX}{id}")
}

/// Server side of peer connections: presents our certificate and REQUIRES a client certificate
/// chained to `files.ca` (a handshake without one, or with one from another CA, fails). Which
/// node the client is must still be checked against its Hello with [`node_id_of`].
pub fn peer_server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let roots = Arc::new(load_roots(&files.ca)?);
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| TlsError::Ca {
            path: files.ca.clone(),
            reason: e.to_string(),
        })?;
    let chain = load_certs(&files.cert, "certificate")?;
    let key = load_key(&files.key)?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::CertKey {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })?;
    Ok(Arc::new(config))
}

/// Client side of peer connections: trusts `files.ca` only and presents our certificate (mutual
/// TLS). The server's certificate must be valid for the name given to the connector (see
/// [`server_name_for`]).
pub fn peer_client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = load_roots(&files.ca)?;
    let chain = load_certs(&files.cert, "certificate")?;
    let key = load_key(&files.key)?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|source| TlsError::CertKey {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })?;
    Ok(Arc::new(config))
}

/// The node id a peer certificate was issued to: its SAN URI `raftix://node/<id>`. A certificate
/// without such a URI, with an invalid id, or naming two different ids is an error.
pub fn node_id_of(cert: &CertificateDer<'_>) -> Result<NodeId, TlsError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let san = parsed
        .subject_alternative_name()
        .map_err(|e| TlsError::Certificate(format!("bad subjectAltName extension: {e}")))?;
    let mut found: Option<NodeId> = None;
    for name in san.iter().flat_map(|san| san.value.general_names.iter()) {
        let GeneralName::URI(uri) = name else {
            continue;
        };
        let Some(digits) = uri.strip_prefix(NODE_URI_PREFIX) else {
            continue;
        };
        let id = parse_node_id(digits).ok_or_else(|| {
            TlsError::NoNodeId(format!(
                "`{uri}` is not `{NODE_URI_PREFIX}<id>` with a positive integer id"
            ))
        })?;
        match found {
            Some(other) if other != id => {
                return Err(TlsError::NoNodeId(format!(
                    "it names two nodes, {other} and {id}"
                )))
            }
            _ => found = Some(id),
        }
    }
    found.ok_or_else(|| {
        TlsError::NoNodeId(format!(
            "no subjectAltName URI `{NODE_URI_PREFIX}<id>` (make node certificates with `raftix certs`)"
        ))
    })
}

/// The node id of the first certificate of a PEM file (this node's own certificate, to check
/// at startup that it was issued to this node).
pub fn cert_file_node_id(path: &Path) -> Result<NodeId, TlsError> {
    let chain = load_certs(path, "certificate")?;
    node_id_of(&chain[0]).map_err(|e| match e {
        TlsError::NoNodeId(reason) => TlsError::Pem {
            path: path.to_owned(),
            reason: format!("the certificate names no raftix node: {reason}"),
        },
        other => other,
    })
}

fn parse_node_id(digits: &str) -> Option<NodeId> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<NodeId>().ok().filter(|&id| id != 0)
}

/// Server name to verify when connecting to a peer at `addr` (`host:port`, `[v6]:port`, or a
/// bare host): the host part as an IP address or a DNS name.
pub fn server_name_for(addr: &str) -> Result<ServerName<'static>, TlsError> {
    let bad = |reason: &str| TlsError::ServerName {
        addr: addr.to_owned(),
        reason: reason.to_owned(),
    };
    let host = if let Some(rest) = addr.strip_prefix('[') {
        rest.split_once(']')
            .map(|(host, _)| host)
            .ok_or_else(|| bad("missing `]`"))?
    } else if addr.parse::<std::net::IpAddr>().is_ok() {
        addr
    } else {
        match addr.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err(bad(
                    "an IPv6 address with a port must be written [addr]:port",
                ))
            }
            Some((host, _)) => host,
            None => addr,
        }
    };
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    ServerName::try_from(host.to_owned()).map_err(|e| bad(&e.to_string()))
}
