//! Node configuration: what one `raftix serve` process needs to know to start.
//!
//! A [`NodeConfig`] is built from an optional TOML file overlaid with `RAFTIX_*` environment
//! variables and command-line flags (the settings table is [`PartialConfig`]: each setting declared
//! once) and checked by [`NodeConfig::validate`] before anything starts. The TOML keys are the
//! field names of [`NodeConfig`]; the flags are the same names in kebab case
//! (`heartbeat_interval_ms` is `--heartbeat-interval-ms`), except the booleans, which are turned off
//! with `--no-pre-vote` and `--no-check-quorum`; the variables are the keys in capitals after
//! `RAFTIX_` (`RAFTIX_NO_PRE_VOTE` for the `--no-...` switches).
//!
//! ```toml
//! id = 1
//! data_dir = "./data/node1"
//! listen_peer = "127.0.0.1:7001"
//! listen_http = "127.0.0.1:8001"
//!
//! [cluster]
//! 1 = "127.0.0.1:7001"
//! 2 = "127.0.0.1:7002"
//! 3 = "127.0.0.1:7003"
//! ```

mod defaults;
mod error;
pub mod gateway_tls;
mod http_limits;
mod partial;
mod secret;
mod tokens;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::core::{CoreConfig, NodeId};
pub use crate::tls::ClientAuth;

pub use defaults::*;
pub use error::{flag_of, ConfigError};
pub use http_limits::*;
pub use partial::{parse_cluster, PartialConfig};
pub use secret::load_cluster_secret;
pub use tokens::{load_token_file, TokenConfig, TokenRole};
pub use validate::check_host_port;

/// Everything one node needs to start. Build it with [`PartialConfig::build`] (flags over file) or
/// [`NodeConfig::from_toml_str`], both of which validate it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's id: non-zero, and a key of [`cluster`](Self::cluster).
    pub id: NodeId,
    /// Directory of this node's LMDB environments and identity file.
    pub data_dir: PathBuf,
    /// `host:port` the peer (Raft) TCP listener binds.
    pub listen_peer: String,
    /// `host:port` the HTTP gateway binds.
    pub listen_http: String,
    /// `host:port` other nodes and clients should use to reach this node's HTTP gateway (for
    /// example in leader redirects). `None` means [`listen_http`](Self::listen_http); see
    /// [`NodeConfig::advertise_http`].
    #[serde(default)]
    pub advertise_http: Option<String>,
    /// The initial voters: node id -> peer `host:port`. This node included.
    pub cluster: BTreeMap<NodeId, String>,
    /// Name of the cluster; nodes refuse data directories and peers of another cluster.
    #[serde(default = "default_cluster_name")]
    pub cluster_name: String,
    /// Lower bound of the randomized election timeout, in milliseconds.
    #[serde(default = "default_election_timeout_min_ms")]
    pub election_timeout_min_ms: u64,
    /// Upper bound (exclusive) of the randomized election timeout, in milliseconds.
    #[serde(default = "default_election_timeout_max_ms")]
    pub election_timeout_max_ms: u64,
    /// How often a leader sends heartbeats, in milliseconds.
    #[serde(default = "default_heartbeat_interval_ms")]
    pub heartbeat_interval_ms: u64,
    /// Most entries in one AppendEntries message.
    #[serde(default = "default_max_entries_per_msg")]
    pub max_entries_per_msg: usize,
    /// Most bytes (approximately) of entries in one AppendEntries message.
    #[serde(default = "default_max_bytes_per_msg")]
    pub max_bytes_per_msg: usize,
    /// Most AppendEntries messages with entries in flight to one peer.
    #[serde(default = "default_max_inflight")]
    pub max_inflight: usize,
    /// Largest frame the peer transport accepts, in bytes.
    #[serde(default = "default_max_frame_bytes")]
    pub max_frame_bytes: usize,
    /// LMDB map size of the Raft log environment, in bytes.
    #[serde(default = "default_log_map_size")]
    pub log_map_size: usize,
    /// LMDB map size of the state-machine environment, in bytes.
    #[serde(default = "default_sm_map_size")]
    pub sm_map_size: usize,
    /// Ask for pre-votes before starting an election.
    #[serde(default = "default_true")]
    pub pre_vote: bool,
    /// Leaders step down without a quorum; followers ignore votes while they hear a leader.
    #[serde(default = "default_true")]
    pub check_quorum: bool,
    /// How long a client proposal may wait to be committed and applied, in milliseconds.
    #[serde(default = "default_proposal_timeout_ms")]
    pub proposal_timeout_ms: u64,
    /// Followers answer writes with a 307 to the leader instead of forwarding them.
    #[serde(default)]
    pub redirect_writes: bool,
    /// Longest key accepted over HTTP, in bytes (at most 511, LMDB's key limit).
    #[serde(default = "default_max_key_bytes")]
    pub max_key_bytes: usize,
    /// Largest value accepted over HTTP, in bytes.
    #[serde(default = "default_max_value_bytes")]
    pub max_value_bytes: usize,
    /// Clock-drift bound of lease reads: the lease lasts the minimum election timeout less this.
    #[serde(default = "default_lease_drift_ms")]
    pub lease_drift_ms: u64,
    /// A follower further behind the leader's commit than this many entries is SYNCING.
    #[serde(default = "default_syncing_lag")]
    pub syncing_lag: u64,
    /// A durable log write slower than this (milliseconds) makes the node DEGRADED for a while.
    #[serde(default = "default_slow_disk_ms")]
    pub slow_disk_ms: u64,
    /// Lost-quorum recovery: accept `cluster` even though the data dir records other voters
    /// (and record it). Dangerous; see README.
    #[serde(default)]
    pub force_new_cluster: bool,
    /// Members of `cluster` that start as learners rather than voters (a node that joined an
    /// existing cluster records the members it was told of this way).
    #[serde(default)]
    pub learners: std::collections::BTreeSet<NodeId>,
    /// Take a snapshot once this many entries were applied since the last one (0: never
    /// automatically).
    #[serde(default = "default_snapshot_entries")]
    pub snapshot_entries: u64,
    /// Take a snapshot once this many bytes of entries were applied since the last one (0: no
    /// byte threshold).
    #[serde(default = "default_snapshot_bytes")]
    pub snapshot_bytes: u64,
    /// Entries kept in the log before a snapshot's index, for followers slightly behind.
    #[serde(default = "default_snapshot_keep")]
    pub snapshot_keep: u64,
    /// Static bearer tokens of the HTTP gateway (see [`TokenConfig`]); none means access control
    /// is off. `Debug` redacts the secrets.
    #[serde(default, serialize_with = "tokens_redacted")]
    pub tokens: Vec<TokenConfig>,
    /// The file holding the cluster secret peers authenticate each other with (see
    /// [`load_cluster_secret`]); read into [`cluster_secret`](Self::cluster_secret) when the
    /// configuration is built.
    #[serde(default)]
    pub cluster_secret_file: Option<PathBuf>,
    /// The cluster secret: when set, peers must prove they hold it (challenge-response) and
    /// every peer frame carries an HMAC (see [`crate::transport::auth`]). Every node needs the
    /// same. `Debug` redacts it.
    #[serde(skip)]
    pub cluster_secret: Option<crate::transport::ClusterSecret>,
    /// Most inbound peer connections open at once (strangers still in their handshake are
    /// limited further, to 16).
    #[serde(default = "default_max_peer_connections")]
    pub max_peer_connections: usize,
    /// PEM certificate (chain) of the HTTPS gateway. With [`tls_key`](Self::tls_key) the API and
    /// dashboard are served over HTTPS only; see [`gateway_tls`].
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of [`tls_cert`](Self::tls_cert).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that client certificates presented to the gateway must chain to.
    #[serde(default)]
    pub tls_client_ca: Option<PathBuf>,
    /// Whether the gateway asks for client certificates; `None`: `required` when
    /// [`tls_client_ca`](Self::tls_client_ca) is set, else `none`. See
    /// [`NodeConfig::client_auth`].
    #[serde(default)]
    pub tls_client_auth: Option<ClientAuth>,
    /// CA (PEM) this node trusts when it calls other nodes' HTTPS gateways (forwarding to the
    /// leader, the dashboard's probes); `None`: [`tls_client_ca`](Self::tls_client_ca), else the
    /// system's trust store.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Mutual TLS between peers: the CA (PEM) every peer certificate must chain to. With
    /// [`peer_tls_cert`](Self::peer_tls_cert) and [`peer_tls_key`](Self::peer_tls_key), every
    /// peer connection is TLS in both directions and each certificate must name its node
    /// (`raftix certs` makes them); see [`crate::transport::tls_stream`].
    #[serde(default)]
    pub peer_tls_ca: Option<PathBuf>,
    /// This node's certificate (PEM) on peer connections; it must name this node's id.
    #[serde(default)]
    pub peer_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of [`peer_tls_cert`](Self::peer_tls_cert).
    #[serde(default)]
    pub peer_tls_key: Option<PathBuf>,
    /// This cluster's region name for multi-region replication (`--region`; every node of the
    /// cluster needs the same): required to add remote regions.
    #[serde(default)]
    pub region: Option<String>,
    /// Largest request body of the JSON routes (CAS, transactions, dashboard commands), in
    /// bytes; `PUT /v1/kv/{key}` takes up to `max_value_bytes`, other routes 4 KiB.
    #[serde(default = "http_limits::default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Most HTTP connections open at once (further ones wait in the listen backlog).
    #[serde(default = "http_limits::default_max_connections")]
    pub max_connections: usize,
    /// Most TLS handshakes in progress at once (when the gateway serves TLS).
    #[serde(default = "http_limits::default_max_connection_rate")]
    pub max_connection_rate: usize,
    /// A client must send a request's head within this (ms; 0: no limit), else 408.
    #[serde(default = "http_limits::default_client_request_timeout_ms")]
    pub client_request_timeout_ms: u64,
    /// A closing connection is dropped after this (ms; 0: no limit).
    #[serde(default = "http_limits::default_client_disconnect_timeout_ms")]
    pub client_disconnect_timeout_ms: u64,
    /// A client must send a request's body within this after its head (ms; 0: no limit), else
    /// 408.
    #[serde(default = "http_limits::default_client_body_timeout_ms")]
    pub client_body_timeout_ms: u64,
    /// Most HTTP requests this node serves at once (0: no limit); more get 429.
    #[serde(default = "http_limits::default_max_inflight_requests")]
    pub max_inflight_requests: usize,
    /// Most HTTP requests one client (one token, else one IP address) has in flight on this node
    /// at once (0: no limit); more get 429.
    #[serde(default = "http_limits::default_max_inflight_per_client")]
    pub max_inflight_per_client: usize,
}

impl NodeConfig {
    /// A configuration with the required settings given and every other setting at its default.
    /// Not validated.
    pub fn with_defaults(
        id: NodeId,
        data_dir: impl Into<PathBuf>,
        listen_peer: impl Into<String>,
        listen_http: impl Into<String>,
        cluster: BTreeMap<NodeId, String>,
    ) -> Self {
        Self {
            id,
            data_dir: data_dir.into(),
            listen_peer: listen_peer.into(),
            listen_http: listen_http.into(),
            advertise_http: None,
            cluster,
            cluster_name: default_cluster_name(),
            election_timeout_min_ms: DEFAULT_ELECTION_TIMEOUT_MIN_MS,
            election_timeout_max_ms: DEFAULT_ELECTION_TIMEOUT_MAX_MS,
            heartbeat_interval_ms: DEFAULT_HEARTBEAT_INTERVAL_MS,
            max_entries_per_msg: DEFAULT_MAX_ENTRIES_PER_MSG,
            max_bytes_per_msg: DEFAULT_MAX_BYTES_PER_MSG,
            max_inflight: DEFAULT_MAX_INFLIGHT,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            log_map_size: DEFAULT_LOG_MAP_SIZE,
            sm_map_size: DEFAULT_SM_MAP_SIZE,
            pre_vote: true,
            check_quorum: true,
            proposal_timeout_ms: DEFAULT_PROPOSAL_TIMEOUT_MS,
            redirect_writes: false,
            max_key_bytes: DEFAULT_MAX_KEY_BYTES,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            lease_drift_ms: DEFAULT_LEASE_DRIFT_MS,
            syncing_lag: DEFAULT_SYNCING_LAG,
            slow_disk_ms: DEFAULT_SLOW_DISK_MS,
            force_new_cluster: false,
            learners: Default::default(),
            snapshot_entries: DEFAULT_SNAPSHOT_ENTRIES,
            snapshot_bytes: DEFAULT_SNAPSHOT_BYTES,
            snapshot_keep: DEFAULT_SNAPSHOT_KEEP,
            tokens: Vec::new(),
            cluster_secret_file: None,
            cluster_secret: None,
            max_peer_connections: default_max_peer_connections(),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            tls_client_auth: None,
            tls_ca: None,
            peer_tls_ca: None,
            peer_tls_cert: None,
            peer_tls_key: None,
            region: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connection_rate: DEFAULT_MAX_CONNECTION_RATE,
            client_request_timeout_ms: DEFAULT_CLIENT_REQUEST_TIMEOUT_MS,
            client_disconnect_timeout_ms: DEFAULT_CLIENT_DISCONNECT_TIMEOUT_MS,
            client_body_timeout_ms: DEFAULT_CLIENT_BODY_TIMEOUT_MS,
            max_inflight_requests: DEFAULT_MAX_INFLIGHT_REQUESTS,
            max_inflight_per_client: DEFAULT_MAX_INFLIGHT_PER_CLIENT,
        }
    }

    /// The configuration as TOML, as a config file would give it, with token secrets redacted
    /// (`raftix serve --print-config`).
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        let internal = |reason: String| ConfigError::invalid("config", "", reason);
        let mut value = serde_json::to_value(self).map_err(|e| internal(e.to_string()))?;
        strip_nulls(&mut value);
        toml::to_string(&value).map_err(|e| internal(e.to_string()))
    }

    /// Parses a complete configuration from TOML (every required key present) and validates it.
    /// `origin` names the source in error messages.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let config: NodeConfig = toml::from_str(text).map_err(|e| ConfigError::ParseFile {
            path: origin.to_owned(),
            source: Box::new(e),
        })?;
        let mut config = config;
        if let Some(path) = &config.cluster_secret_file {
            config.cluster_secret = Some(load_cluster_secret(path)?);
        }
        config.validate()?;
        Ok(config)
    }

    /// Whether the HTTP gateway requires bearer tokens (some are configured).
    pub fn auth_enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The HTTP address others should use: [`advertise_http`](Self::advertise_http), or
    /// [`listen_http`](Self::listen_http) when it is not set.
    pub fn advertise_http(&self) -> &str {
        self.advertise_http.as_deref().unwrap_or(&self.listen_http)
    }

    /// The peer addresses of the other voters.
    pub fn peers(&self) -> impl Iterator<Item = (NodeId, &str)> + '_ {
        self.cluster
            .iter()
            .filter(move |(&id, _)| id != self.id)
            .map(|(&id, addr)| (id, addr.as_str()))
    }

    /// The protocol settings of the Raft core.
    pub fn core_config(&self) -> CoreConfig {
        let mut core = CoreConfig::new(self.id, []);
        core.initial = crate::core::Membership {
            voters: self
                .cluster
                .keys()
                .filter(|id| !self.learners.contains(id))
                .copied()
                .collect(),
            learners: self.learners.clone(),
            addrs: self.cluster.clone(),
            removed: Default::default(),
        };
        core.pre_vote = self.pre_vote;
        core.check_quorum = self.check_quorum;
        core.max_inflight = self.max_inflight;
        core.max_entries_per_msg = self.max_entries_per_msg;
        core.max_bytes_per_msg = self.max_bytes_per_msg;
        core
    }

    /// Lower bound of the election timeout.
    pub fn election_timeout_min(&self) -> Duration {
        Duration::from_millis(self.election_timeout_min_ms)
    }

    /// Upper bound (exclusive) of the election timeout.
    pub fn election_timeout_max(&self) -> Duration {
        Duration::from_millis(self.election_timeout_max_ms)
    }

    /// The leader's heartbeat interval.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    /// How long a client proposal may wait.
    pub fn proposal_timeout(&self) -> Duration {
        Duration::from_millis(self.proposal_timeout_ms)
    }
}
