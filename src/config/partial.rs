//! [`PartialConfig`]: the settings table of `raftix serve`, each setting declared once, and
//! [`parse_cluster`] for the `--cluster` flag.
//!
//! Every field below is one setting: its doc comment is the `--help` text, its name is the
//! config-file key and (in kebab case) the flag, and its `env` is the environment variable
//! (`RAFTIX_` and the key in capitals; the two flags spelled `--no-...` read `RAFTIX_NO_...`).
//! Flags and the environment are read by clap (a flag wins over its variable), the file by serde;
//! [`PartialConfig::overlay`] puts flags and environment over the file, and
//! [`PartialConfig::build`] fills what is still missing with [`NodeConfig`]'s defaults (declared
//! with its fields) and validates the result. Adding a setting is a field here and a field (with
//! its default) in [`NodeConfig`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::validate::check_host_port;
use super::{ConfigError, NodeConfig};
use crate::core::NodeId;

/// Some of the settings of a [`NodeConfig`]: what the config file, the environment or the flags
/// give. Unknown config-file keys are rejected.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct PartialConfig {
    /// This node's id (non-zero, one of the ids in --cluster; with --join, a new id). Required.
    #[arg(long, value_name = "ID", env = "RAFTIX_ID")]
    pub id: Option<NodeId>,
    /// Directory for this node's data. Required.
    #[arg(long, value_name = "DIR", env = "RAFTIX_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address the peer (Raft) listener binds. Required.
    #[arg(long, value_name = "HOST:PORT", env = "RAFTIX_LISTEN_PEER")]
    pub listen_peer: Option<String>,
    /// Address the HTTP gateway binds. Required.
    #[arg(long, value_name = "HOST:PORT", env = "RAFTIX_LISTEN_HTTP")]
    pub listen_http: Option<String>,
    /// HTTP address clients and other nodes should use [default: --listen-http].
    #[arg(long, value_name = "HOST:PORT", env = "RAFTIX_ADVERTISE_HTTP")]
    pub advertise_http: Option<String>,
    /// Initial voters with their peer addresses, this node included. Required, except with
    /// --join (where the cluster's members are used).
    /// In the config file: the same string, or a table of `ID = "HOST:PORT"`.
    #[arg(long, value_name = "ID=HOST:PORT,...", value_parser = parse_cluster_flag, env = "RAFTIX_CLUSTER")]
    #[serde(default, deserialize_with = "cluster_from_string_or_table")]
    pub cluster: Option<BTreeMap<NodeId, String>>,
    /// Cluster name [default: raftix].
    #[arg(long, value_name = "NAME", env = "RAFTIX_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// Lower bound of the election timeout [default: 150].
    #[arg(long, value_name = "MS", env = "RAFTIX_ELECTION_TIMEOUT_MIN_MS")]
    pub election_timeout_min_ms: Option<u64>,
    /// Upper bound of the election timeout [default: 300].
    #[arg(long, value_name = "MS", env = "RAFTIX_ELECTION_TIMEOUT_MAX_MS")]
    pub election_timeout_max_ms: Option<u64>,
    /// Leader heartbeat interval [default: 50].
    #[arg(long, value_name = "MS", env = "RAFTIX_HEARTBEAT_INTERVAL_MS")]
    pub heartbeat_interval_ms: Option<u64>,
    /// Most entries per AppendEntries message [default: 512].
    #[arg(long, value_name = "N", env = "RAFTIX_MAX_ENTRIES_PER_MSG")]
    pub max_entries_per_msg: Option<usize>,
    /// Most entry bytes per AppendEntries message [default: 1048576].
    #[arg(long, value_name = "BYTES", env = "RAFTIX_MAX_BYTES_PER_MSG")]
    pub max_bytes_per_msg: Option<usize>,
    /// Most AppendEntries messages in flight per peer [default: 64].
    #[arg(long, value_name = "N", env = "RAFTIX_MAX_INFLIGHT")]
    pub max_inflight: Option<usize>,
    /// Largest peer frame accepted [default: 16777216].
    #[arg(long, value_name = "BYTES", env = "RAFTIX_MAX_FRAME_BYTES")]
    pub max_frame_bytes: Option<usize>,
    /// LMDB map size of the Raft log [default: 1073741824].
    #[arg(long, value_name = "BYTES", env = "RAFTIX_LOG_MAP_SIZE")]
    pub log_map_size: Option<usize>,
    /// LMDB map size of the state machine [default: 1073741824].
    #[arg(long, value_name = "BYTES", env = "RAFTIX_SM_MAP_SIZE")]
    pub sm_map_size: Option<usize>,
    /// Start elections without a pre-vote round.
    /// In the config file: `pre_vote = false`.
    #[arg(long = "no-pre-vote", env = "RAFTIX_NO_PRE_VOTE", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_negated_flag)]
    pub pre_vote: Option<bool>,
    /// Disable check-quorum (leader step-down and vote stickiness).
    /// In the config file: `check_quorum = false`.
    #[arg(long = "no-check-quorum", env = "RAFTIX_NO_CHECK_QUORUM", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_negated_flag)]
    pub check_quorum: Option<bool>,
    /// How long a client proposal may wait to be applied [default: 5000].
    #[arg(long, value_name = "MS", env = "RAFTIX_PROPOSAL_TIMEOUT_MS")]
    pub proposal_timeout_ms: Option<u64>,
    /// Followers answer writes with 307 to the leader instead of forwarding them.
    /// In the config file: `redirect_writes = true`.
    #[arg(long = "redirect-writes", env = "RAFTIX_REDIRECT_WRITES", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_flag)]
    pub redirect_writes: Option<bool>,
    /// Longest key accepted over HTTP [default: 511, the most allowed].
    #[arg(long, value_name = "BYTES", env = "RAFTIX_MAX_KEY_BYTES")]
    pub max_key_bytes: Option<usize>,
    /// Largest value accepted over HTTP [default: 1048576].
    #[arg(long, value_name = "BYTES", env = "RAFTIX_MAX_VALUE_BYTES")]
    pub max_value_bytes: Option<usize>,
    /// Clock-drift bound of lease reads; the lease lasts the minimum election timeout less this
    /// [default: 50].
    #[arg(long, value_name = "MS", env = "RAFTIX_LEASE_DRIFT_MS")]
    pub lease_drift_ms: Option<u64>,
    /// A follower more entries than this behind the leader's commit is SYNCING [default: 1000].
    #[arg(long, value_name = "ENTRIES", env = "RAFTIX_SYNCING_LAG")]
    pub syncing_lag: Option<u64>,
    /// A durable log write slower than this makes the node DEGRADED for a while [default: 500].
    #[arg(long, value_name = "MS", env = "RAFTIX_SLOW_DISK_MS")]
    pub slow_disk_ms: Option<u64>,
    /// Lost-quorum recovery: start with the voters of --cluster although the data dir records
    /// others (it records the new set). Only for a cluster that lost its quorum for good: see
    /// README.
    /// In the config file: `force_new_cluster = true`.
    #[arg(long = "force-new-cluster", env = "RAFTIX_FORCE_NEW_CLUSTER", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_flag)]
    pub force_new_cluster: Option<bool>,
    /// Members of --cluster that start as learners (non-voting: they receive the log but never
    /// vote or campaign) instead of voters.
    #[arg(long, value_name = "ID[,ID..]", value_parser = parse_learners_flag, env = "RAFTIX_LEARNERS")]
    pub learners: Option<BTreeSet<NodeId>>,
    /// Take a snapshot (and compact the log) once this many entries were applied since the last
    /// one; 0: never automatically [default: 20000].
    #[arg(long, value_name = "N", env = "RAFTIX_SNAPSHOT_ENTRIES")]
    pub snapshot_entries: Option<u64>,
    /// Take a snapshot once this many bytes of entries were applied since the last one; 0: no
    /// byte threshold [default: 268435456].
    #[arg(long, value_name = "N", env = "RAFTIX_SNAPSHOT_BYTES")]
    pub snapshot_bytes: Option<u64>,
    /// Entries kept in the log before a snapshot's index, so followers slightly behind catch up
    /// from the log rather than from a snapshot [default: 5000].
    #[arg(long, value_name = "N", env = "RAFTIX_SNAPSHOT_KEEP")]
    pub snapshot_keep: Option<u64>,
    /// Bearer tokens of the HTTP API (`[[tokens]]` tables: `name`, `token`, `role`, optional
    /// `prefix`). In the config file only: a secret does not belong on a command line or in the
    /// environment (use --token-file).
    #[arg(skip)]
    pub tokens: Option<Vec<super::TokenConfig>>,
    /// Bearer tokens of the HTTP API: a TOML file of `[[tokens]]` tables (`name`, `token`,
    /// `role` = read|write|admin, optional `prefix`) that must not be readable by group or
    /// others (chmod 600). Without any token (here or `[[tokens]]` in --config) the API is open.
    #[arg(long, value_name = "PATH", env = "RAFTIX_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Authenticate peers with a shared cluster secret read from this file (at least 16 bytes,
    /// e.g. `openssl rand -hex 32 > secret; chmod 600 secret`): every peer connection starts with
    /// a challenge-response handshake and every peer frame carries an HMAC, so a process without
    /// the secret cannot vote, append or receive the log. Every node needs the same file.
    #[arg(long, value_name = "PATH", env = "RAFTIX_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// Most inbound peer connections open at once [default: 128].
    #[arg(long, value_name = "N", env = "RAFTIX_MAX_PEER_CONNECTIONS")]
    pub max_peer_connections: Option<usize>,
    /// Serve the HTTP API and dashboard over HTTPS only, with this PEM certificate (chain);
    /// needs --tls-key. Make test certificates with `raftix certs`.
    #[arg(long, value_name = "FILE", env = "RAFTIX_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", env = "RAFTIX_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that client certificates must chain to; turns client certificate auth on
    /// (`required` unless --tls-client-auth says otherwise).
    #[arg(long, value_name = "FILE", env = "RAFTIX_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Client certificates: none (not asked for), optional (a presented one must chain to
    /// --tls-client-ca, none is fine), required (none: the handshake fails) [default: required
    /// with --tls-client-ca, else none].
    #[arg(long, value_name = "MODE", value_enum, env = "RAFTIX_TLS_CLIENT_AUTH")]
    pub tls_client_auth: Option<super::ClientAuth>,
    /// CA (PEM) trusted when this node calls other nodes over HTTPS (forwarding writes and
    /// reads to the leader, the dashboard's view of the other nodes) [default: --tls-client-ca,
    /// else the system's trust store]. The node presents --tls-cert to them.
    #[arg(long, value_name = "FILE", env = "RAFTIX_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Mutual TLS between peers: the CA (PEM) every peer certificate must chain to. Needs
    /// --peer-tls-cert and --peer-tls-key; every node of the cluster needs the same setting.
    #[arg(long, value_name = "FILE", env = "RAFTIX_PEER_TLS_CA")]
    pub peer_tls_ca: Option<PathBuf>,
    /// This node's certificate (PEM) on peer connections; it must name this node
    /// (SAN URI raftix://node/<id>, as `raftix certs` makes them).
    #[arg(long, value_name = "FILE", env = "RAFTIX_PEER_TLS_CERT")]
    pub peer_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --peer-tls-cert.
    #[arg(long, value_name = "FILE", env = "RAFTIX_PEER_TLS_KEY")]
    pub peer_tls_key: Option<PathBuf>,
    /// This cluster's region name for multi-region replication (1 to 64 of A-Z a-z 0-9 _ -;
    /// the same on every node of the cluster). Remote regions are added with
    /// `POST /v1/regions` or `raftix region add`.
    #[arg(long, value_name = "NAME", env = "RAFTIX_REGION")]
    pub region: Option<String>,
    /// Largest body of the JSON routes (CAS, transactions, dashboard commands); must leave 64 KiB
    /// within --max-frame-bytes [default: 8388608].
    #[arg(long, value_name = "BYTES", env = "RAFTIX_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Most HTTP connections open at once [default: 2048].
    #[arg(long, value_name = "N", env = "RAFTIX_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most TLS handshakes in progress at once, when the gateway serves TLS [default: 256].
    #[arg(long, value_name = "N", env = "RAFTIX_MAX_CONNECTION_RATE")]
    pub max_connection_rate: Option<usize>,
    /// A client must send a request's head within this, else 408; 0: no limit [default: 5000].
    #[arg(long, value_name = "MS", env = "RAFTIX_CLIENT_REQUEST_TIMEOUT_MS")]
    pub client_request_timeout_ms: Option<u64>,
    /// A closing connection is dropped after this; 0: no limit [default: 1000].
    #[arg(long, value_name = "MS", env = "RAFTIX_CLIENT_DISCONNECT_TIMEOUT_MS")]
    pub client_disconnect_timeout_ms: Option<u64>,
    /// A client must send a request's body within this after its head, else 408; 0: no limit
    /// [default: 30000].
    #[arg(long, value_name = "MS", env = "RAFTIX_CLIENT_BODY_TIMEOUT_MS")]
    pub client_body_timeout_ms: Option<u64>,
    /// Most HTTP requests this node serves at once; more get 429 (0: no limit) [default: 1024].
    #[arg(long, value_name = "N", env = "RAFTIX_MAX_INFLIGHT_REQUESTS")]
    pub max_inflight_requests: Option<usize>,
    /// Most HTTP requests one client (a token, or an IP address without one) has in flight on
    /// this node; more get 429 (0: no limit) [default: 256].
    #[arg(long, value_name = "N", env = "RAFTIX_MAX_INFLIGHT_PER_CLIENT")]
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
    pub fn overlay(self, over: PartialConfig) -> Result<PartialConfig, ConfigError> {
        let mut merged = self.given()?;
        merged.extend(over.given()?);
        serde_json::from_value(Value::Object(merged)).map_err(internal)
    }

    /// The settings given, by config-file key.
    fn given(&self) -> Result<Map<String, Value>, ConfigError> {
        match serde_json::to_value(self).map_err(internal)? {
            Value::Object(mut map) => {
                map.retain(|_, value| !value.is_null());
                Ok(map)
            }
            other => Err(internal(format!("settings became {other}"))),
        }
    }

    /// The complete configuration: required settings must be present, the others take their
    /// defaults; the token and cluster secret files are read; the result is validated.
    pub fn build(self) -> Result<NodeConfig, ConfigError> {
        let required = [
            ("id", self.id.is_some()),
            ("data_dir", self.data_dir.is_some()),
            ("listen_peer", self.listen_peer.is_some()),
            ("listen_http", self.listen_http.is_some()),
            ("cluster", self.cluster.is_some()),
        ];
        if let Some((key, _)) = required.into_iter().find(|(_, given)| !given) {
            return Err(ConfigError::Missing { key });
        }
        let token_file = self.token_file.clone();
        let mut given = self.given()?;
        given.remove("token_file");
        let mut c: NodeConfig = serde_json::from_value(Value::Object(given)).map_err(internal)?;
        if let Some(path) = &token_file {
            c.tokens.extend(super::load_token_file(path)?);
        }
        if let Some(path) = c.cluster_secret_file.clone() {
            c.cluster_secret = Some(super::load_cluster_secret(&path)?);
        }
        c.validate()?;
        Ok(c)
    }
}

/// A settings conversion that cannot fail on values clap and serde already typed: a bug.
fn internal(reason: impl fmt::Display) -> ConfigError {
    ConfigError::invalid(
        "config",
        "",
        format!("internal error combining settings: {reason}"),
    )
}

/// `--cluster`: see [`parse_cluster`].
fn parse_cluster_flag(text: &str) -> Result<BTreeMap<NodeId, String>, String> {
    parse_cluster(text).map_err(|e| e.to_string())
}

/// `--learners 2,3`: node ids, comma-separated.
fn parse_learners_flag(text: &str) -> Result<BTreeSet<NodeId>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse()
                .map_err(|_| format!("`{item}` is not a node id (a positive integer)"))
        })
        .collect()
}

/// A switch given as a flag (`--redirect-writes`), `--redirect-writes=false`, or in the
/// environment (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).
fn parse_flag(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(format!("`{other}` is not true or false")),
    }
}

/// A `--no-...` switch: true (the flag given) turns the setting off.
fn parse_negated_flag(text: &str) -> Result<bool, String> {
    parse_flag(text).map(|on| !on)
}

/// `cluster` in the config file: the flag's string (`"1=HOST:PORT,2=HOST:PORT"`) or a table.
fn cluster_from_string_or_table<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<BTreeMap<NodeId, String>>, D::Error> {
    struct ClusterVisitor;
    impl<'de> serde::de::Visitor<'de> for ClusterVisitor {
        type Value = Option<BTreeMap<NodeId, String>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("\"ID=HOST:PORT,...\" or a table of ID = \"HOST:PORT\"")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            parse_cluster(text).map(Some).map_err(E::custom)
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut cluster = BTreeMap::new();
            while let Some((id, addr)) = map.next_entry::<NodeId, String>()? {
                cluster.insert(id, addr);
            }
            Ok(Some(cluster))
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    deserializer.deserialize_any(ClusterVisitor)
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
