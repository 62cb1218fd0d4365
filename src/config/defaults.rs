//! The defaults of [`NodeConfig`](super::NodeConfig)'s settings (the constants, and the
//! functions its serde attributes name), and how a configuration is shown to people (nulls
//! dropped for TOML, token secrets redacted).

use serde::Serialize;

use super::TokenConfig;

/// Default for [`NodeConfig::cluster_name`].
pub const DEFAULT_CLUSTER_NAME: &str = "raftix";
/// Default for [`NodeConfig::election_timeout_min_ms`].
pub const DEFAULT_ELECTION_TIMEOUT_MIN_MS: u64 = 150;
/// Default for [`NodeConfig::election_timeout_max_ms`].
pub const DEFAULT_ELECTION_TIMEOUT_MAX_MS: u64 = 300;
/// Default for [`NodeConfig::heartbeat_interval_ms`].
pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u64 = 50;
/// Default for [`NodeConfig::max_entries_per_msg`].
pub const DEFAULT_MAX_ENTRIES_PER_MSG: usize = 512;
/// Default for [`NodeConfig::max_bytes_per_msg`]: 1 MiB.
pub const DEFAULT_MAX_BYTES_PER_MSG: usize = 1 << 20;
/// Default for [`NodeConfig::max_inflight`].
pub const DEFAULT_MAX_INFLIGHT: usize = 64;
/// Default for [`NodeConfig::max_frame_bytes`]: 16 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 << 20;
/// Default for [`NodeConfig::log_map_size`]: 1 GiB.
pub const DEFAULT_LOG_MAP_SIZE: usize = 1 << 30;
/// Default for [`NodeConfig::sm_map_size`]: 1 GiB.
pub const DEFAULT_SM_MAP_SIZE: usize = 1 << 30;
/// Default for [`NodeConfig::max_key_bytes`] (also the most LMDB allows).
pub const DEFAULT_MAX_KEY_BYTES: usize = 511;
/// Default for [`NodeConfig::max_value_bytes`]: 1 MiB.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1 << 20;
/// Default for [`NodeConfig::proposal_timeout_ms`].
pub const DEFAULT_PROPOSAL_TIMEOUT_MS: u64 = 5000;

/// Removes the unset (null) settings, which TOML cannot express.
pub(super) fn strip_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Serializes tokens without their secrets: a serialized `NodeConfig` is for people
/// (`raftix serve --print-config`).
pub(super) fn tokens_redacted<S: serde::Serializer>(
    tokens: &[TokenConfig],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let redacted: Vec<TokenConfig> = tokens
        .iter()
        .map(|t| TokenConfig {
            token: "<redacted>".to_string(),
            ..t.clone()
        })
        .collect();
    redacted.serialize(serializer)
}

pub(super) fn default_max_peer_connections() -> usize {
    crate::transport::listener::DEFAULT_MAX_PEER_CONNECTIONS
}

/// Default for [`NodeConfig::snapshot_entries`].
pub const DEFAULT_SNAPSHOT_ENTRIES: u64 = 20_000;
/// Default for [`NodeConfig::snapshot_bytes`]: 256 MiB.
pub const DEFAULT_SNAPSHOT_BYTES: u64 = 256 << 20;
/// Default for [`NodeConfig::snapshot_keep`].
pub const DEFAULT_SNAPSHOT_KEEP: u64 = 5_000;

pub(super) fn default_snapshot_entries() -> u64 {
    DEFAULT_SNAPSHOT_ENTRIES
}
pub(super) fn default_snapshot_bytes() -> u64 {
    DEFAULT_SNAPSHOT_BYTES
}
pub(super) fn default_snapshot_keep() -> u64 {
    DEFAULT_SNAPSHOT_KEEP
}

/// Default for [`NodeConfig::lease_drift_ms`].
pub const DEFAULT_LEASE_DRIFT_MS: u64 = 50;
/// Default for [`NodeConfig::syncing_lag`].
pub const DEFAULT_SYNCING_LAG: u64 = 1000;
/// Default for [`NodeConfig::slow_disk_ms`].
pub const DEFAULT_SLOW_DISK_MS: u64 = 500;

pub(super) fn default_lease_drift_ms() -> u64 {
    DEFAULT_LEASE_DRIFT_MS
}
pub(super) fn default_syncing_lag() -> u64 {
    DEFAULT_SYNCING_LAG
}
pub(super) fn default_slow_disk_ms() -> u64 {
    DEFAULT_SLOW_DISK_MS
}

pub(super) fn default_max_key_bytes() -> usize {
    DEFAULT_MAX_KEY_BYTES
}
pub(super) fn default_max_value_bytes() -> usize {
    DEFAULT_MAX_VALUE_BYTES
}

pub(super) fn default_cluster_name() -> String {
    DEFAULT_CLUSTER_NAME.to_owned()
}
pub(super) fn default_election_timeout_min_ms() -> u64 {
    DEFAULT_ELECTION_TIMEOUT_MIN_MS
}
pub(super) fn default_election_timeout_max_ms() -> u64 {
    DEFAULT_ELECTION_TIMEOUT_MAX_MS
}
pub(super) fn default_heartbeat_interval_ms() -> u64 {
    DEFAULT_HEARTBEAT_INTERVAL_MS
}
pub(super) fn default_max_entries_per_msg() -> usize {
    DEFAULT_MAX_ENTRIES_PER_MSG
}
pub(super) fn default_max_bytes_per_msg() -> usize {
    DEFAULT_MAX_BYTES_PER_MSG
}
pub(super) fn default_max_inflight() -> usize {
    DEFAULT_MAX_INFLIGHT
}
pub(super) fn default_max_frame_bytes() -> usize {
    DEFAULT_MAX_FRAME_BYTES
}
pub(super) fn default_log_map_size() -> usize {
    DEFAULT_LOG_MAP_SIZE
}
pub(super) fn default_sm_map_size() -> usize {
    DEFAULT_SM_MAP_SIZE
}
pub(super) fn default_true() -> bool {
    true
}
pub(super) fn default_proposal_timeout_ms() -> u64 {
    DEFAULT_PROPOSAL_TIMEOUT_MS
}
