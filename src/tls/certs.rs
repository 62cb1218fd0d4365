//! Test certificates (`raftix certs`): a CA, one certificate per node and client certificates,
//! made with rcgen (ECDSA P-256).
//!
//! Files in the output directory: `ca.pem`, `ca-key.pem`, `node-<id>.pem`, `node-<id>-key.pem`,
//! `client-<name>.pem`, `client-<name>-key.pem`. Keys are written with mode 0600. A CA already
//! in the directory is reused (so nodes can be added to a running cluster later); other
//! existing files are not overwritten unless `force` is set. Every file is checked before any
//! is written, so a refusal leaves the directory as it was.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use super::{node_uri, TlsError};
use crate::core::NodeId;

/// The CA certificate's file name.
pub const CA_CERT: &str = "ca.pem";
/// The CA key's file name.
pub const CA_KEY: &str = "ca-key.pem";
/// How long a new CA is valid at least (years), so that nodes can be added for a long time.
pub const CA_MIN_DAYS: u32 = 3650;
/// Hosts of node certificates when none are given.
pub const DEFAULT_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// What to generate.
#[derive(Clone, Debug)]
pub struct CertsRequest {
    /// The output directory (created if missing).
    pub out: PathBuf,
    /// Node ids to make certificates for.
    pub nodes: Vec<NodeId>,
    /// Host names and IP addresses every node certificate is valid for.
    pub hosts: Vec<String>,
    /// Names of client certificates to make (letters, digits, `.`, `_`, `-`).
    pub clients: Vec<String>,
    /// Validity of node and client certificates, in days from now.
    pub days: u32,
    /// Overwrite existing node and client files.
    pub force: bool,
}

/// What [`generate`] did.
#[derive(Clone, Debug, Default)]
pub struct CertsReport {
    /// Whether a new CA was made (false: the one in the directory was reused).
    pub ca_created: bool,
    /// Every file written, in order.
    pub written: Vec<PathBuf>,
}

/// The certificate file of node `id` in `dir`.
pub fn node_cert_path(dir: &Path, id: NodeId) -> PathBuf {
    dir.join(format!("node-{id}.pem"))
}

/// The key file of node `id` in `dir`.
pub fn node_key_path(dir: &Path, id: NodeId) -> PathBuf {
    dir.join(format!("node-{id}-key.pem"))
}

/// The certificate file of client `name` in `dir`.
pub fn client_cert_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("client-{name}.pem"))
}

/// The key file of client `name` in `dir`.
pub fn client_key_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("client-{name}-key.pem"))
}

/// Makes (or reuses) the CA and makes the node and client certificates asked for.
pub fn generate(req: &CertsRequest) -> Result<CertsReport, TlsError> {
    check_request(req)?;
    std::fs::create_dir_all(&req.out).map_err(|source| TlsError::Write {
        path: req.out.clone(),
        source,
    })?;
    let (ca_cert, ca_key) = (req.out.join(CA_CERT), req.out.join(CA_KEY));
    let reuse_ca = match (ca_cert.exists(), ca_key.exists()) {
        (true, true) => true,
        (false, false) => false,
        (true, false) | (false, true) => {
            return Err(TlsError::Invalid(format!(
                "{} has only one of {CA_CERT} and {CA_KEY}: restore the other or remove it",
                req.out.display()
            )))
        }
    };
    let mut outputs = Vec::new();
    for &id in &req.nodes {
        outputs.push(node_cert_path(&req.out, id));
        outputs.push(node_key_path(&req.out, id));
    }
    for name in &req.clients {
        outputs.push(client_cert_path(&req.out, name));
        outputs.push(client_key_path(&req.out, name));
    }
    if !req.force {
        if let Some(path) = outputs.iter().find(|p| p.exists()) {
            return Err(TlsError::Exists { path: path.clone() });
        }
    }

    let mut report = CertsReport {
        ca_created: !reuse_ca,
        written: Vec::new(),
    };
    let (issuer_key, issuer_pem) = if reuse_ca {
        let key_pem = read_text(&ca_key, "CA key")?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| TlsError::Pem {
            path: ca_key.clone(),
            reason: format!("not a usable CA key: {e}"),
        })?;
        (key, read_text(&ca_cert, "CA certificate")?)
    } else {
        let key = new_key("the CA key")?;
        let cert = ca_params(req.days.max(CA_MIN_DAYS))?
            .self_signed(&key)
            .map_err(|e| generate_error("the CA certificate", e))?;
        write_file(&ca_key, key.serialize_pem().as_bytes(), true, &mut report)?;
        write_file(&ca_cert, cert.pem().as_bytes(), false, &mut report)?;
        (key, cert.pem())
    };
    let issuer = Issuer::from_ca_cert_pem(&issuer_pem, issuer_key).map_err(|e| TlsError::Pem {
        path: ca_cert.clone(),
        reason: format!("not a usable CA certificate: {e}"),
    })?;

    for &id in &req.nodes {
        let what = format!("the certificate of node {id}");
        let key = new_key(&what)?;
        let cert = node_params(id, &req.hosts, req.days)?
            .signed_by(&key, &issuer)
            .map_err(|e| generate_error(&what, e))?;
        let (cert_path, key_path) = (node_cert_path(&req.out, id), node_key_path(&req.out, id));
        write_file(&key_path, key.serialize_pem().as_bytes(), true, &mut report)?;
        write_file(&cert_path, cert.pem().as_bytes(), false, &mut report)?;
    }
    for name in &req.clients {
        let what = format!("the certificate of client {name}");
        let key = new_key(&what)?;
        let cert = client_params(name, req.days)?
            .signed_by(&key, &issuer)
            .map_err(|e| generate_error(&what, e))?;
        let (cert_path, key_path) = (
            client_cert_path(&req.out, name),
            client_key_path(&req.out, name),
        );
        write_file(&key_path, key.serialize_pem().as_bytes(), true, &mut report)?;
        write_file(&cert_path, cert.pem().as_bytes(), false, &mut report)?;
    }
    Ok(report)
}

fn check_request(req: &CertsRequest) -> Result<(), TlsError> {
    if req.days == 0 {
        return Err(TlsError::Invalid("--days must be at least 1".into()));
    }
    let mut ids = BTreeSet::new();
    for &id in &req.nodes {
        if id == 0 {
            return Err(TlsError::Invalid("node ids must be greater than 0".into()));
        }
        if !ids.insert(id) {
            return Err(TlsError::Invalid(format!("node {id} is listed twice")));
        }
    }
    if !req.nodes.is_empty() && req.hosts.is_empty() {
        return Err(TlsError::Invalid(
            "node certificates need at least one host (--hosts)".into(),
        ));
    }
    for host in &req.hosts {
        if rustls::pki_types::ServerName::try_from(host.as_str()).is_err() {
            return Err(TlsError::Invalid(format!(
                "`{host}` is neither an IP address nor a valid DNS name"
            )));
        }
    }
    let mut names = BTreeSet::new();
    for name in &req.clients {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            && !name.starts_with('.');
        if !ok {
            return Err(TlsError::Invalid(format!(
                "client name `{name}` must be letters, digits, `.`, `_` or `-` (it names files)"
            )));
        }
        if !names.insert(name) {
            return Err(TlsError::Invalid(format!("client {name} is listed twice")));
        }
    }
    Ok(())
}

fn generate_error(what: &str, err: rcgen::Error) -> TlsError {
    TlsError::Generate {
        what: what.to_owned(),
        reason: err.to_string(),
    }
}

fn new_key(what: &str) -> Result<KeyPair, TlsError> {
    KeyPair::generate().map_err(|e| generate_error(&format!("a key for {what}"), e))
}

/// Validity from an hour ago (clock skew between machines) to `days` from now.
fn validity(params: &mut CertificateParams, days: u32) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(i64::from(days));
}

fn ca_params(days: u32) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::new(Vec::<String>::new())
        .map_err(|e| generate_error("the CA certificate", e))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    // A name of its own, so a certificate of another `raftix certs` CA is reported as of an
    // unknown issuer rather than as a bad signature.
    params.distinguished_name.push(
        DnType::CommonName,
        format!("raftix test CA {:08x}", rand::random::<u32>()),
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, days);
    Ok(params)
}

fn node_params(id: NodeId, hosts: &[String], days: u32) -> Result<CertificateParams, TlsError> {
    let what = format!("the certificate of node {id}");
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| generate_error(&what, e))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("raftix node {id}"));
    for host in hosts {
        let san = match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                host.as_str()
                    .try_into()
                    .map_err(|e| generate_error(&what, e))?,
            ),
        };
        params.subject_alt_names.push(san);
    }
    params.subject_alt_names.push(SanType::URI(
        node_uri(id)
            .try_into()
            .map_err(|e| generate_error(&what, e))?,
    ));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days);
    Ok(params)
}

fn client_params(name: &str, days: u32) -> Result<CertificateParams, TlsError> {
    let what = format!("the certificate of client {name}");
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| generate_error(&what, e))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.subject_alt_names.push(SanType::URI(
        format!("raftix://client/{name}")
            .try_into()
            .map_err(|e| generate_error(&what, e))?,
    ));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days);
    Ok(params)
}

fn read_text(path: &Path, what: &'static str) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Writes `data` to `path` through a temporary file renamed into place; keys (`private`) get
/// mode 0600, certificates 0644.
fn write_file(
    path: &Path,
    data: &[u8],
    private: bool,
    report: &mut CertsReport,
) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(err)?;
    file.write_all(data)
        .and_then(|()| file.sync_all())
        .map_err(err)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(err)?;
    report.written.push(path.to_owned());
    Ok(())
}
