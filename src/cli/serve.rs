//! The `serve` subcommand's flags and how they combine with the config file into a
//! [`NodeConfig`].

use std::path::PathBuf;

use clap::Args;

use super::client::parse_endpoint;
use crate::config::{parse_cluster, ConfigError, NodeConfig, PartialConfig};

/// Flags of `raftix serve`: run one node. Every setting can also come from the `--config` file
/// (keys are the flag names with `_` for `-`); flags win over the file.
#[derive(Clone, Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML config file with any of the settings below (keys like `listen_peer`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// This node's id (non-zero, one of the ids in --cluster; with --join, a new id). Required.
    #[arg(long, value_name = "ID")]
    pub id: Option<u64>,
    /// Directory for this node's data. Required.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address the peer (Raft) listener binds. Required.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen_peer: Option<String>,
    /// Address the HTTP gateway binds. Required.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen_http: Option<String>,
    /// HTTP address clients and other nodes should use [default: --listen-http].
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise_http: Option<String>,
    /// Initial voters with their peer addresses, this node included. Required, except with
    /// --join (where the cluster's members are used).
    #[arg(long, value_name = "ID=HOST:PORT,...")]
    pub cluster: Option<String>,
    /// Cluster name [default: raftix].
    #[arg(long, value_name = "NAME")]
    pub cluster_name: Option<String>,
    /// Lower bound of the election timeout [default: 150].
    #[arg(long, value_name = "MS")]
    pub election_timeout_min_ms: Option<u64>,
    /// Upper bound of the election timeout [default: 300].
    #[arg(long, value_name = "MS")]
    pub election_timeout_max_ms: Option<u64>,
    /// Leader heartbeat interval [default: 50].
    #[arg(long, value_name = "MS")]
    pub heartbeat_interval_ms: Option<u64>,
    /// Most entries per AppendEntries message [default: 512].
    #[arg(long, value_name = "N")]
    pub max_entries_per_msg: Option<usize>,
    /// Most entry bytes per AppendEntries message [default: 1048576].
    #[arg(long, value_name = "BYTES")]
    pub max_bytes_per_msg: Option<usize>,
    /// Most AppendEntries messages in flight per peer [default: 64].
    #[arg(long, value_name = "N")]
    pub max_inflight: Option<usize>,
    /// Largest peer frame accepted [default: 16777216].
    #[arg(long, value_name = "BYTES")]
    pub max_frame_bytes: Option<usize>,
    /// LMDB map size of the Raft log [default: 1073741824].
    #[arg(long, value_name = "BYTES")]
    pub log_map_size: Option<usize>,
    /// LMDB map size of the state machine [default: 1073741824].
    #[arg(long, value_name = "BYTES")]
    pub sm_map_size: Option<usize>,
    /// Start elections without a pre-vote round.
    #[arg(long)]
    pub no_pre_vote: bool,
    /// Disable check-quorum (leader step-down and vote stickiness).
    #[arg(long)]
    pub no_check_quorum: bool,
    /// How long a client proposal may wait to be applied [default: 5000].
    #[arg(long, value_name = "MS")]
    pub proposal_timeout_ms: Option<u64>,
    /// Followers answer writes with 307 to the leader instead of forwarding them.
    #[arg(long)]
    pub redirect_writes: bool,
    /// Longest key accepted over HTTP [default: 511, the most allowed].
    #[arg(long, value_name = "BYTES")]
    pub max_key_bytes: Option<usize>,
    /// Largest value accepted over HTTP [default: 1048576].
    #[arg(long, value_name = "BYTES")]
    pub max_value_bytes: Option<usize>,
    /// Clock-drift bound of lease reads; the lease lasts the minimum election timeout less this
    /// [default: 50].
    #[arg(long, value_name = "MS")]
    pub lease_drift_ms: Option<u64>,
    /// A follower more entries than this behind the leader's commit is SYNCING [default: 1000].
    #[arg(long, value_name = "ENTRIES")]
    pub syncing_lag: Option<u64>,
    /// A durable log write slower than this makes the node DEGRADED for a while [default: 500].
    #[arg(long, value_name = "MS")]
    pub slow_disk_ms: Option<u64>,
    /// Lost-quorum recovery: start with the voters of --cluster although the data dir records
    /// others (it records the new set). Only for a cluster that lost its quorum for good: see
    /// README.
    #[arg(long)]
    pub force_new_cluster: bool,
    /// Members of --cluster that start as learners (non-voting: they receive the log but never
    /// vote or campaign) instead of voters.
    #[arg(long, value_name = "ID[,ID..]", value_delimiter = ',')]
    pub learners: Option<Vec<u64>>,
    /// Take a snapshot (and compact the log) once this many entries were applied since the last
    /// one; 0: never automatically [default: 20000].
    #[arg(long, value_name = "N")]
    pub snapshot_entries: Option<u64>,
    /// Take a snapshot once this many bytes of entries were applied since the last one; 0: no
    /// byte threshold [default: 268435456].
    #[arg(long, value_name = "N")]
    pub snapshot_bytes: Option<u64>,
    /// Entries kept in the log before a snapshot's index, so followers slightly behind catch up
    /// from the log rather than from a snapshot [default: 5000].
    #[arg(long, value_name = "N")]
    pub snapshot_keep: Option<u64>,
    /// Bearer tokens of the HTTP API: a TOML file of `[[tokens]]` tables (`name`, `token`,
    /// `role` = read|write|admin, optional `prefix`) that must not be readable by group or
    /// others (chmod 600). Without any token (here or `[[tokens]]` in --config) the API is open.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Authenticate peers with a shared cluster secret read from this file (at least 16 bytes,
    /// e.g. `openssl rand -hex 32 > secret; chmod 600 secret`): every peer connection starts with
    /// a challenge-response handshake and every peer frame carries an HMAC, so a process without
    /// the secret cannot vote, append or receive the log. Every node needs the same file.
    #[arg(long, value_name = "PATH", env = "RAFTIX_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// Most inbound peer connections open at once [default: 128].
    #[arg(long, value_name = "N")]
    pub max_peer_connections: Option<usize>,
    /// Join a running cluster as a NEW node (empty --data-dir): ask the nodes at these URLs
    /// (`http://HOST:PORT` or `HOST:PORT`, any of them; followers redirect to the leader) to
    /// add this node as a learner at its --advertise-peer address, start with the members they
    /// answer, wait until the log has caught up, then ask to be promoted to voter (unless
    /// --learner). --cluster is not needed. On a data dir that already holds Raft data --join is
    /// ignored and the node starts as it is (with the members recorded by its join).
    #[arg(long, value_name = "URL[,URL..]", value_delimiter = ',', value_parser = parse_endpoint)]
    pub join: Option<Vec<String>>,
    /// With --join: stay a learner (receive the log, never vote); promote it later with
    /// `raftix member promote ID`.
    #[arg(long, requires = "join")]
    pub learner: bool,
    /// Peer address the other nodes should use to reach this one, announced by --join
    /// [default: --listen-peer].
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise_peer: Option<String>,
    /// Serve the HTTP API and dashboard over HTTPS only, with this PEM certificate (chain);
    /// needs --tls-key. Make test certificates with `raftix certs`.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that client certificates must chain to; turns client certificate auth on
    /// (`required` unless --tls-client-auth says otherwise).
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// Client certificates: none (not asked for), optional (a presented one must chain to
    /// --tls-client-ca, none is fine), required (none: the handshake fails) [default: required
    /// with --tls-client-ca, else none].
    #[arg(long, value_name = "MODE", value_enum)]
    pub tls_client_auth: Option<crate::tls::ClientAuth>,
    /// CA (PEM) trusted when this node calls other nodes over HTTPS (forwarding writes and
    /// reads to the leader, the dashboard's view of the other nodes) [default: --tls-client-ca,
    /// else the system's trust store]. The node presents --tls-cert to them.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Mutual TLS between peers: the CA (PEM) every peer certificate must chain to. Needs
    /// --peer-tls-cert and --peer-tls-key; every node of the cluster needs the same setting.
    #[arg(long, value_name = "FILE")]
    pub peer_tls_ca: Option<PathBuf>,
    /// This node's certificate (PEM) on peer connections; it must name this node
    /// (SAN URI raftix://node/<id>, as `raftix certs` makes them).
    #[arg(long, value_name = "FILE")]
    pub peer_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --peer-tls-cert.
    #[arg(long, value_name = "FILE")]
    pub peer_tls_key: Option<PathBuf>,
    /// This cluster's region name for multi-region replication (1 to 64 of A-Z a-z 0-9 _ -;
    /// the same on every node of the cluster). Remote regions are added with
    /// `POST /v1/regions` or `raftix region add`.
    #[arg(long, value_name = "NAME")]
    pub region: Option<String>,
    /// Largest body of the JSON routes (CAS, transactions, dashboard commands); must leave 64 KiB
    /// within --max-frame-bytes [default: 8388608].
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Most HTTP connections open at once [default: 2048].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Most TLS handshakes in progress at once, when the gateway serves TLS [default: 256].
    #[arg(long, value_name = "N")]
    pub max_connection_rate: Option<usize>,
    /// A client must send a request's head within this, else 408; 0: no limit [default: 5000].
    #[arg(long, value_name = "MS")]
    pub client_request_timeout_ms: Option<u64>,
    /// A closing connection is dropped after this; 0: no limit [default: 1000].
    #[arg(long, value_name = "MS")]
    pub client_disconnect_timeout_ms: Option<u64>,
    /// A client must send a request's body within this after its head, else 408; 0: no limit
    /// [default: 30000].
    #[arg(long, value_name = "MS")]
    pub client_body_timeout_ms: Option<u64>,
    /// Most HTTP requests this node serves at once; more get 429 (0: no limit) [default: 1024].
    #[arg(long, value_name = "N")]
    pub max_inflight_requests: Option<usize>,
    /// Most HTTP requests one client (a token, or an IP address without one) has in flight on
    /// this node; more get 429 (0: no limit) [default: 256].
    #[arg(long, value_name = "N")]
    pub max_inflight_per_client: Option<usize>,
}

impl ServeArgs {
    /// The settings given as flags (not the file).
    pub fn flags(&self) -> Result<PartialConfig, ConfigError> {
        Ok(PartialConfig {
            id: self.id,
            data_dir: self.data_dir.clone(),
            listen_peer: self.listen_peer.clone(),
            listen_http: self.listen_http.clone(),
            advertise_http: self.advertise_http.clone(),
            cluster: self.cluster.as_deref().map(parse_cluster).transpose()?,
            cluster_name: self.cluster_name.clone(),
            election_timeout_min_ms: self.election_timeout_min_ms,
            election_timeout_max_ms: self.election_timeout_max_ms,
            heartbeat_interval_ms: self.heartbeat_interval_ms,
            max_entries_per_msg: self.max_entries_per_msg,
            max_bytes_per_msg: self.max_bytes_per_msg,
            max_inflight: self.max_inflight,
            max_frame_bytes: self.max_frame_bytes,
            log_map_size: self.log_map_size,
            sm_map_size: self.sm_map_size,
            pre_vote: self.no_pre_vote.then_some(false),
            check_quorum: self.no_check_quorum.then_some(false),
            proposal_timeout_ms: self.proposal_timeout_ms,
            redirect_writes: self.redirect_writes.then_some(true),
            max_key_bytes: self.max_key_bytes,
            max_value_bytes: self.max_value_bytes,
            lease_drift_ms: self.lease_drift_ms,
            syncing_lag: self.syncing_lag,
            slow_disk_ms: self.slow_disk_ms,
            force_new_cluster: self.force_new_cluster.then_some(true),
            learners: self
                .learners
                .as_ref()
                .map(|ids| ids.iter().copied().collect()),
            snapshot_entries: self.snapshot_entries,
            snapshot_bytes: self.snapshot_bytes,
            snapshot_keep: self.snapshot_keep,
            tokens: None,
            token_file: self.token_file.clone(),
            cluster_secret_file: self.cluster_secret_file.clone(),
            max_peer_connections: self.max_peer_connections,
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            tls_client_ca: self.tls_client_ca.clone(),
            tls_client_auth: self.tls_client_auth,
            tls_ca: self.tls_ca.clone(),
            peer_tls_ca: self.peer_tls_ca.clone(),
            peer_tls_cert: self.peer_tls_cert.clone(),
            peer_tls_key: self.peer_tls_key.clone(),
            region: self.region.clone(),
            max_body_bytes: self.max_body_bytes,
            max_connections: self.max_connections,
            max_connection_rate: self.max_connection_rate,
            client_request_timeout_ms: self.client_request_timeout_ms,
            client_disconnect_timeout_ms: self.client_disconnect_timeout_ms,
            client_body_timeout_ms: self.client_body_timeout_ms,
            max_inflight_requests: self.max_inflight_requests,
            max_inflight_per_client: self.max_inflight_per_client,
        })
    }

    /// The `--config` file (if any) overlaid with the flags, not completed nor validated yet.
    pub fn partial(&self) -> Result<PartialConfig, ConfigError> {
        let flags = self.flags()?;
        let file = match &self.config {
            Some(path) => PartialConfig::load(path)?,
            None => PartialConfig::default(),
        };
        Ok(file.overlay(flags))
    }

    /// The validated configuration: the `--config` file (if any) overlaid with the flags, defaults
    /// for the rest. Touches nothing on disk but reading the config file.
    pub fn into_config(self) -> Result<NodeConfig, ConfigError> {
        self.partial()?.build()
    }
}
