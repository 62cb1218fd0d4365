//! [`NodeConfig::validate`]: every check a configuration must pass before a node starts.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use super::{ConfigError, NodeConfig};

/// Checks that `value` is `host:port`: a host name, IPv4 address or bracketed IPv6 address, then a
/// port number. Port 0 ("any free port") is allowed only when `allow_port_zero`. `key` names the
/// setting in the error.
pub fn check_host_port(
    key: &'static str,
    value: &str,
    allow_port_zero: bool,
) -> Result<(), ConfigError> {
    let bad = |reason: &str| ConfigError::invalid(key, value, reason);
    let (host, port) = value
        .rsplit_once(':')
        .ok_or_else(|| bad("expected HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad("the port must be a number from 1 to 65535"))?;
    if port == 0 && !allow_port_zero {
        return Err(bad("the port must not be 0 here: others connect to it"));
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner
            .parse::<Ipv6Addr>()
            .map_err(|_| bad("the bracketed host is not an IPv6 address"))?;
        return Ok(());
    }
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !host_ok {
        return Err(bad(
            "the host must be a name or IP address (write IPv6 as [ADDR]:PORT)",
        ));
    }
    Ok(())
}

/// Checks that a size or count is not zero.
fn non_zero(key: &'static str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::invalid(key, value, "must be greater than 0"));
    }
    Ok(())
}

/// Checks the cluster map: non-empty, non-zero ids, valid and distinct addresses.
fn check_cluster(cluster: &BTreeMap<u64, String>) -> Result<(), ConfigError> {
    if cluster.is_empty() {
        return Err(ConfigError::invalid(
            "cluster",
            "",
            "must list at least one voter as ID=HOST:PORT",
        ));
    }
    let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
    for (&id, addr) in cluster {
        let item = format!("{id}={addr}");
        if id == 0 {
            return Err(ConfigError::ClusterItem {
                item,
                reason: "node ids must be greater than 0".into(),
            });
        }
        check_host_port("cluster", addr, false).map_err(|e| ConfigError::ClusterItem {
            item: item.clone(),
            reason: match e {
                ConfigError::Invalid { reason, .. } => reason,
                other => other.to_string(),
            },
        })?;
        if let Some(other) = seen.insert(addr.as_str(), id) {
            return Err(ConfigError::ClusterItem {
                item,
                reason: format!("node {other} has the same address"),
            });
        }
    }
    Ok(())
}

impl NodeConfig {
    /// Checks the configuration; the error names the offending flag and key and quotes the value.
    ///
    /// The id is non-zero and one of the cluster's voters; every address is `host:port`; the
    /// election timeout range is non-empty and above the heartbeat interval; counts and sizes are
    /// non-zero, and a message's entries fit in a frame.
    pub fn validate(&self) -> Result<(), ConfigError> {
        non_zero("id", self.id)?;
        check_cluster(&self.cluster)?;
        if !self.cluster.contains_key(&self.id) {
            let ids: Vec<String> = self.cluster.keys().map(u64::to_string).collect();
            return Err(ConfigError::invalid(
                "id",
                self.id,
                format!(
                    "not a member of --cluster (cluster), whose ids are {}",
                    ids.join(", ")
                ),
            ));
        }
        if let Some(stray) = self.learners.iter().find(|l| !self.cluster.contains_key(l)) {
            return Err(ConfigError::invalid(
                "learners",
                stray,
                "every learner must be a member of --cluster (cluster)",
            ));
        }
        if self.learners.len() == self.cluster.len() {
            return Err(ConfigError::invalid(
                "learners",
                self.learners.len(),
                "the cluster needs at least one voter",
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("data_dir", "", "must not be empty"));
        }
        if self.cluster_name.trim().is_empty() {
            return Err(ConfigError::invalid(
                "cluster_name",
                &self.cluster_name,
                "must not be empty",
            ));
        }
        check_host_port("listen_peer", &self.listen_peer, true)?;
        check_host_port("listen_http", &self.listen_http, true)?;
        if let Some(adv) = &self.advertise_http {
            check_host_port("advertise_http", adv, false)?;
        }
        if self.listen_peer == self.listen_http {
            return Err(ConfigError::invalid(
                "listen_http",
                &self.listen_http,
                "must differ from --listen-peer (listen_peer)",
            ));
        }
        self.check_timing()?;
        super::tokens::check_tokens(&self.tokens)?;
        super::gateway_tls::check(self)?;
        self.check_sizes()?;
        self.check_http_limits()
    }

    /// Timeouts and intervals.
    fn check_timing(&self) -> Result<(), ConfigError> {
        non_zero("election_timeout_min_ms", self.election_timeout_min_ms)?;
        non_zero("heartbeat_interval_ms", self.heartbeat_interval_ms)?;
        non_zero("proposal_timeout_ms", self.proposal_timeout_ms)?;
        if self.election_timeout_min_ms >= self.election_timeout_max_ms {
            return Err(ConfigError::invalid(
                "election_timeout_max_ms",
                self.election_timeout_max_ms,
                format!(
                    "must be greater than --election-timeout-min-ms (election_timeout_min_ms) = {}",
                    self.election_timeout_min_ms
                ),
            ));
        }
        if self.heartbeat_interval_ms >= self.election_timeout_min_ms {
            return Err(ConfigError::invalid(
                "heartbeat_interval_ms",
                self.heartbeat_interval_ms,
                format!(
                    "must be less than --election-timeout-min-ms (election_timeout_min_ms) = {}",
                    self.election_timeout_min_ms
                ),
            ));
        }
        if self.lease_drift_ms >= self.election_timeout_min_ms {
            return Err(ConfigError::invalid(
                "lease_drift_ms",
                self.lease_drift_ms,
                format!(
                    "must be less than --election-timeout-min-ms (election_timeout_min_ms) = {}",
                    self.election_timeout_min_ms
                ),
            ));
        }
        non_zero("slow_disk_ms", self.slow_disk_ms)?;
        Ok(())
    }

    /// Counts and byte sizes.
    fn check_sizes(&self) -> Result<(), ConfigError> {
        let sizes = [
            ("max_entries_per_msg", self.max_entries_per_msg),
            ("max_bytes_per_msg", self.max_bytes_per_msg),
            ("max_inflight", self.max_inflight),
            ("max_frame_bytes", self.max_frame_bytes),
            ("log_map_size", self.log_map_size),
            ("sm_map_size", self.sm_map_size),
            ("max_key_bytes", self.max_key_bytes),
            ("max_value_bytes", self.max_value_bytes),
        ];
        for (key, value) in sizes {
            non_zero(key, value as u64)?;
        }
        if self.max_bytes_per_msg >= self.max_frame_bytes {
            return Err(ConfigError::invalid(
                "max_bytes_per_msg",
                self.max_bytes_per_msg,
                format!(
                    "must be less than --max-frame-bytes (max_frame_bytes) = {}",
                    self.max_frame_bytes
                ),
            ));
        }
        if self.max_key_bytes > super::DEFAULT_MAX_KEY_BYTES {
            return Err(ConfigError::invalid(
                "max_key_bytes",
                self.max_key_bytes,
                format!(
                    "must be at most {} (LMDB's key limit)",
                    super::DEFAULT_MAX_KEY_BYTES
                ),
            ));
        }
        if self.max_value_bytes + self.max_key_bytes + 4096 >= self.max_frame_bytes {
            return Err(ConfigError::invalid(
                "max_value_bytes",
                self.max_value_bytes,
                format!(
                    "must leave room within --max-frame-bytes (max_frame_bytes) = {}",
                    self.max_frame_bytes
                ),
            ));
        }
        Ok(())
    }
}
