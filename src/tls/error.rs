//! [`TlsError`]: every way loading, building or generating TLS material can fail, each naming
//! the file or the input at fault.

use std::path::PathBuf;

/// A TLS setup failure; the message names the file or input at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read the {what} {}: {source}", path.display())]
    Read {
        /// What the file should hold ("CA certificate", "private key", ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not valid PEM of the expected kind, or holds none.
    #[error("{}: {reason}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Certificates and key could not be combined into a TLS configuration (for example the key
    /// does not belong to the certificate).
    #[error("cannot use the certificate {} with the key {}: {source}", cert.display(), key.display())]
    CertKey {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// The CA file cannot be used to verify certificates.
    #[error("cannot use {} as CA: {reason}", path.display())]
    Ca {
        /// The CA file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A certificate could not be parsed.
    #[error("unreadable certificate: {0}")]
    Certificate(String),
    /// A peer certificate names no node, or an invalid one.
    #[error("the certificate names no raftix node: {0}")]
    NoNodeId(String),
    /// An address has no host part usable as a TLS server name.
    #[error("`{addr}` has no host usable as a TLS server name: {reason}")]
    ServerName {
        /// The address given.
        addr: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration (should not happen with the ring provider).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// Certificate generation failed.
    #[error("cannot generate {what}: {reason}")]
    Generate {
        /// What was being generated.
        what: String,
        /// Why.
        reason: String,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file to be generated exists already (pass `--force` to overwrite it).
    #[error("{} exists already (pass --force to overwrite it)", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Invalid input to certificate generation (names, hosts, ids).
    #[error("{0}")]
    Invalid(String),
}
