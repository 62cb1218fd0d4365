//! Errors found while loading or validating a [`NodeConfig`](super::NodeConfig).
//!
//! Every message names the setting both as its command-line flag and as its config-file key, and
//! quotes the offending value, so the user can fix it wherever it came from.

use std::path::PathBuf;

/// The command-line flag of a config-file key: `heartbeat_interval_ms` -> `--heartbeat-interval-ms`.
pub fn flag_of(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// How a setting is named in messages: `--heartbeat-interval-ms (heartbeat_interval_ms)`.
fn setting(key: &str) -> String {
    format!("{} ({key})", flag_of(key))
}

/// A configuration that cannot be used. Nothing has been started when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required setting was given neither as a flag nor in the config file.
    #[error("missing required setting {}: give the flag or set `{key}` in the config file", flag_of(.key))]
    Missing {
        /// The config-file key.
        key: &'static str,
    },
    /// A setting has a value that is not allowed.
    #[error("invalid {}: `{value}`: {reason}", setting(.key))]
    Invalid {
        /// The config-file key.
        key: &'static str,
        /// The offending value, as the user wrote it (or as it was parsed).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// One `ID=HOST:PORT` item of the cluster list is malformed.
    #[error("invalid --cluster (cluster) item `{item}`: {reason}")]
    ClusterItem {
        /// The offending item.
        item: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", .path.display())]
    ReadFile {
        /// The file given with `--config`.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown keys or wrongly typed values.
    #[error("invalid config file {}: {source}", .path.display())]
    ParseFile {
        /// The file given with `--config`.
        path: PathBuf,
        /// The TOML error, which names the key and position.
        source: Box<toml::de::Error>,
    },
    /// The token file cannot be used (unreadable, malformed, or not private).
    #[error("cannot use token file {} (--token-file): {reason}", .path.display())]
    TokenFile {
        /// The file given with `--token-file`.
        path: PathBuf,
        /// What is wrong with it (never quotes a secret).
        reason: String,
    },
    /// The cluster secret file cannot be used (unreadable, too short, or not private).
    #[error("cannot use cluster secret file {} (--cluster-secret-file): {reason}", .path.display())]
    SecretFile {
        /// The file given with `--cluster-secret-file`.
        path: PathBuf,
        /// What is wrong with it (never quotes the secret).
        reason: String,
    },
}

impl ConfigError {
    /// An [`Invalid`](ConfigError::Invalid) error.
    pub fn invalid(key: &'static str, value: impl ToString, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// The config-file key this error is about, if it is about one setting.
    pub fn key(&self) -> Option<&'static str> {
        match self {
            ConfigError::Missing { key } | ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::ClusterItem { .. } => Some("cluster"),
            ConfigError::TokenFile { .. } => Some("token_file"),
            ConfigError::SecretFile { .. } => Some("cluster_secret_file"),
            ConfigError::ReadFile { .. } | ConfigError::ParseFile { .. } => None,
        }
    }
}
