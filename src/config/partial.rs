//! [`PartialConfig`]: a configuration with every setting optional, so that a config file and
//! command-line flags can each give some settings and be layered, and [`parse_cluster`] for the
//! `--cluster` flag.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::validate::check_host_port;
use super::{ConfigError, NodeConfig};
use crate::core::NodeId;

/// Some of the settings of a [`NodeConfig`]: what a config file or the flags give. The TOML keys
/// are those of [`NodeConfig`]; unknown keys are rejected.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // Each field is the `NodeConfig` field of the same name.
pub struct PartialConfig {
    pub id: Option<NodeId>,
    pub data_dir: Option<PathBuf>,
    pub listen_peer: Option<String>,
    pub listen_http: Option<String>,
    pub advertise_http: Option<String>,
    pub cluster: Option<BTreeMap<NodeId, String>>,
    pub cluster_name: Option<String>,
    pub election_timeout_min_ms: Option<u64>,
    pub election_timeout_max_ms: Option<u64>,
    pub heartbeat_interval_ms: Option<u64>,
    pub max_entries_per_msg: Option<usize>,
    pub max_bytes_per_msg: Option<usize>,
    pub max_inflight: Option<usize>,
    pub max_frame_bytes: Option<usize>,
    pub log_map_size: Option<usize>,
    pub sm_map_size: Option<usize>,
    pub pre_vote: Option<bool>,
    pub check_quorum: Option<bool>,
    pub proposal_timeout_ms: Option<u64>,
    pub redirect_writes: Option<bool>,
    pub max_key_bytes: Option<usize>,
    pub max_value_bytes: Option<usize>,
    pub lease_drift_ms: Option<u64>,
    pub syncing_lag: Option<u64>,
    pub slow_disk_ms: Option<u64>,
    pub force_new_cluster: Option<bool>,
    pub learners: Option<BTreeSet<NodeId>>,
    pub snapshot_entries: Option<u64>,
    pub snapshot_bytes: Option<u64>,
    pub snapshot_keep: Option<u64>,
    pub tokens: Option<Vec<super::TokenConfig>>,
    /// A file of `[[tokens]]` (see [`super::TokenConfig`]), added to `tokens`; must be private
    /// (mode 600 or stricter).
    pub token_file: Option<PathBuf>,
    /// The cluster secret file (see [`super::load_cluster_secret`]).
    pub cluster_secret_file: Option<PathBuf>,
    /// Most inbound peer connections open at once.
    pub max_peer_connections: Option<usize>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
    pub tls_client_auth: Option<super::ClientAuth>,
    pub tls_ca: Option<PathBuf>,
    /// Peer mutual TLS: CA, certificate and key (all three or none).
    pub peer_tls_ca: Option<PathBuf>,
    /// See `peer_tls_ca`.
    pub peer_tls_cert: Option<PathBuf>,
    /// See `peer_tls_ca`.
    pub peer_tls_key: Option<PathBuf>,
    /// This cluster's region name.
    pub region: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_connection_rate: Option<usize>,
    pub client_request_timeout_ms: Option<u64>,
    pub client_disconnect_timeout_ms: Option<u64>,
    pub client_body_timeout_ms: Option<u64>,
    pub max_inflight_requests: Option<usize>,
    pub max_inflight_per_client: Option<usize>,
}

impl PartialConfig {
    /// Reads and parses a TOML config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses TOML text; `origin` names the source in error messages.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::ParseFile {
            path: origin.to_owned(),
            source: Box::new(e),
        })
    }

    /// `self` with every setting that `over` gives replaced by `over`'s value.
    pub fn overlay(self, over: PartialConfig) -> PartialConfig {
        PartialConfig {
            id: over.id.or(self.id),
            data_dir: over.data_dir.or(self.data_dir),
            listen_peer: over.listen_peer.or(self.listen_peer),
            listen_http: over.listen_http.or(self.listen_http),
            advertise_http: over.advertise_http.or(self.advertise_http),
            cluster: over.cluster.or(self.cluster),
            cluster_name: over.cluster_name.or(self.cluster_name),
            election_timeout_min_ms: over
                .election_timeout_min_ms
                .or(self.election_timeout_min_ms),
            election_timeout_max_ms: over
                .election_timeout_max_ms
                .or(self.election_timeout_max_ms),
            heartbeat_interval_ms: over.heartbeat_interval_ms.or(self.heartbeat_interval_ms),
            max_entries_per_msg: over.max_entries_per_msg.or(self.max_entries_per_msg),
            max_bytes_per_msg: over.max_bytes_per_msg.or(self.max_bytes_per_msg),
            max_inflight: over.max_inflight.or(self.max_inflight),
            max_frame_bytes: over.max_frame_bytes.or(self.max_frame_bytes),
            log_map_size: over.log_map_size.or(self.log_map_size),
            sm_map_size: over.sm_map_size.or(self.sm_map_size),
            pre_vote: over.pre_vote.or(self.pre_vote),
            check_quorum: over.check_quorum.or(self.check_quorum),
            proposal_timeout_ms: over.proposal_timeout_ms.or(self.proposal_timeout_ms),
            redirect_writes: over.redirect_writes.or(self.redirect_writes),
            max_key_bytes: over.max_key_bytes.or(self.max_key_bytes),
            max_value_bytes: over.max_value_bytes.or(self.max_value_bytes),
            lease_drift_ms: over.lease_drift_ms.or(self.lease_drift_ms),
            syncing_lag: over.syncing_lag.or(self.syncing_lag),
            slow_disk_ms: over.slow_disk_ms.or(self.slow_disk_ms),
            force_new_cluster: over.force_new_cluster.or(self.force_new_cluster),
            learners: over.learners.or(self.learners),
            snapshot_entries: over.snapshot_entries.or(self.snapshot_entries),
            snapshot_bytes: over.snapshot_bytes.or(self.snapshot_bytes),
            snapshot_keep: over.snapshot_keep.or(self.snapshot_keep),
            tokens: over.tokens.or(self.tokens),
            token_file: over.token_file.or(self.token_file),
            cluster_secret_file: over.cluster_secret_file.or(self.cluster_secret_file),
            max_peer_connections: over.max_peer_connections.or(self.max_peer_connections),
            tls_cert: over.tls_cert.or(self.tls_cert),
            tls_key: over.tls_key.or(self.tls_key),
            tls_client_ca: over.tls_client_ca.or(self.tls_client_ca),
            tls_client_auth: over.tls_client_auth.or(self.tls_client_auth),
            tls_ca: over.tls_ca.or(self.tls_ca),
            peer_tls_ca: over.peer_tls_ca.or(self.peer_tls_ca),
            peer_tls_cert: over.peer_tls_cert.or(self.peer_tls_cert),
            peer_tls_key: over.peer_tls_key.or(self.peer_tls_key),
            region: over.region.or(self.region),
            max_body_bytes: over.max_body_bytes.or(self.max_body_bytes),
            max_connections: over.max_connections.or(self.max_connections),
            max_connection_rate: over.max_connection_rate.or(self.max_connection_rate),
            client_request_timeout_ms: over
                .client_request_timeout_ms
                .or(self.client_request_timeout_ms),
            client_disconnect_timeout_ms: over
                .client_disconnect_timeout_ms
                .or(self.client_disconnect_timeout_ms),
            client_body_timeout_ms: over.client_body_timeout_ms.or(self.client_body_timeout_ms),
            max_inflight_requests: over.max_inflight_requests.or(self.max_inflight_requests),
            max_inflight_per_client: over
                .max_inflight_per_client
                .or(self.max_inflight_per_client),
        }
    }

    /// The complete configuration: required settings must be present, the others take their
    /// defaults; the result is validated.
    pub fn build(self) -> Result<NodeConfig, ConfigError> {
        let id = self.id.ok_or(ConfigError::Missing { key: "id" })?;
        let data_dir = self
            .data_dir
            .ok_or(ConfigError::Missing { key: "data_dir" })?;
        let listen_peer = self
            .listen_peer
            .ok_or(ConfigError::Missing { key: "listen_peer" })?;
        let listen_http = self
            .listen_http
            .ok_or(ConfigError::Missing { key: "listen_http" })?;
        let cluster = self
            .cluster
            .ok_or(ConfigError::Missing { key: "cluster" })?;
        let mut c = NodeConfig::with_defaults(id, data_dir, listen_peer, listen_http, cluster);
        c.advertise_http = self.advertise_http;
        fn set<T>(slot: &mut T, value: Option<T>) {
            if let Some(v) = value {
                *slot = v;
            }
        }
        set(&mut c.cluster_name, self.cluster_name);
        set(&mut c.election_timeout_min_ms, self.election_timeout_min_ms);
        set(&mut c.election_timeout_max_ms, self.election_timeout_max_ms);
        set(&mut c.heartbeat_interval_ms, self.heartbeat_interval_ms);
        set(&mut c.max_entries_per_msg, self.max_entries_per_msg);
        set(&mut c.max_bytes_per_msg, self.max_bytes_per_msg);
        set(&mut c.max_inflight, self.max_inflight);
        set(&mut c.max_frame_bytes, self.max_frame_bytes);
        set(&mut c.log_map_size, self.log_map_size);
        set(&mut c.sm_map_size, self.sm_map_size);
        set(&mut c.pre_vote, self.pre_vote);
        set(&mut c.check_quorum, self.check_quorum);
        set(&mut c.proposal_timeout_ms, self.proposal_timeout_ms);
        set(&mut c.redirect_writes, self.redirect_writes);
        set(&mut c.max_key_bytes, self.max_key_bytes);
        set(&mut c.max_value_bytes, self.max_value_bytes);
        set(&mut c.lease_drift_ms, self.lease_drift_ms);
        set(&mut c.syncing_lag, self.syncing_lag);
        set(&mut c.slow_disk_ms, self.slow_disk_ms);
        set(&mut c.force_new_cluster, self.force_new_cluster);
        set(&mut c.learners, self.learners);
        set(&mut c.snapshot_entries, self.snapshot_entries);
        set(&mut c.snapshot_bytes, self.snapshot_bytes);
        set(&mut c.snapshot_keep, self.snapshot_keep);
        set(&mut c.tokens, self.tokens);
        c.tls_cert = self.tls_cert;
        c.tls_key = self.tls_key;
        c.tls_client_ca = self.tls_client_ca;
        c.tls_client_auth = self.tls_client_auth;
        c.tls_ca = self.tls_ca;
        c.peer_tls_ca = self.peer_tls_ca;
        c.peer_tls_cert = self.peer_tls_cert;
        c.peer_tls_key = self.peer_tls_key;
        c.region = self.region;
        set(&mut c.max_body_bytes, self.max_body_bytes);
        set(&mut c.max_connections, self.max_connections);
        set(&mut c.max_connection_rate, self.max_connection_rate);
        set(
            &mut c.client_request_timeout_ms,
            self.client_request_timeout_ms,
        );
        set(
            &mut c.client_disconnect_timeout_ms,
            self.client_disconnect_timeout_ms,
        );
        set(&mut c.client_body_timeout_ms, self.client_body_timeout_ms);
        set(&mut c.max_inflight_requests, self.max_inflight_requests);
        set(&mut c.max_inflight_per_client, self.max_inflight_per_client);

        if let Some(path) = &self.token_file {
            c.tokens.extend(super::load_token_file(path)?);
        }
        set(&mut c.max_peer_connections, self.max_peer_connections);
        if let Some(path) = &self.cluster_secret_file {
            c.cluster_secret = Some(super::load_cluster_secret(path)?);
            c.cluster_secret_file = Some(path.clone());
        }
        c.validate()?;
        Ok(c)
    }
}

/// Parses the `--cluster` value `1=HOST:PORT,2=HOST:PORT,...` (whitespace around items and empty
/// items are ignored). The error names the offending item.
pub fn parse_cluster(text: &str) -> Result<BTreeMap<NodeId, String>, ConfigError> {
    let mut cluster = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let bad = |reason: String| ConfigError::ClusterItem {
            item: item.to_owned(),
            reason,
        };
        let (id, addr) = item
            .split_once('=')
            .ok_or_else(|| bad("expected ID=HOST:PORT".into()))?;
        let id: NodeId = id.trim().parse().map_err(|_| {
            bad(format!(
                "`{}` is not a node id (a positive integer)",
                id.trim()
            ))
        })?;
        if id == 0 {
            return Err(bad("node ids must be greater than 0".into()));
        }
        let addr = addr.trim();
        check_host_port("cluster", addr, false).map_err(|e| match e {
            ConfigError::Invalid { reason, .. } => bad(reason),
            other => bad(other.to_string()),
        })?;
        if cluster.insert(id, addr.to_owned()).is_some() {
            return Err(bad(format!("node id {id} is listed more than once")));
        }
    }
    Ok(cluster)
}
