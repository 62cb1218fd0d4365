//! Limits of the HTTP gateway: request bodies, connections, slow clients and requests in flight
//! (their defaults and their checks). What they do is described in `src/http/limits.rs` and
//! `docs/security.md`.

use super::{ConfigError, NodeConfig};

/// Default for [`NodeConfig::max_body_bytes`]: 8 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 << 20;
/// Default for [`NodeConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;
/// Default for [`NodeConfig::max_connection_rate`].
pub const DEFAULT_MAX_CONNECTION_RATE: usize = 256;
/// Default for [`NodeConfig::client_request_timeout_ms`].
pub const DEFAULT_CLIENT_REQUEST_TIMEOUT_MS: u64 = 5000;
/// Default for [`NodeConfig::client_disconnect_timeout_ms`].
pub const DEFAULT_CLIENT_DISCONNECT_TIMEOUT_MS: u64 = 1000;
/// Default for [`NodeConfig::client_body_timeout_ms`].
pub const DEFAULT_CLIENT_BODY_TIMEOUT_MS: u64 = 30_000;
/// Default for [`NodeConfig::max_inflight_requests`].
pub const DEFAULT_MAX_INFLIGHT_REQUESTS: usize = 1024;
/// Default for [`NodeConfig::max_inflight_per_client`].
pub const DEFAULT_MAX_INFLIGHT_PER_CLIENT: usize = 256;
/// Room left in a peer frame beyond the largest request body (an entry is framed with a little
/// more than its command).
pub const FRAME_ROOM: usize = 64 * 1024;
/// Smallest `max_body_bytes` accepted (membership and token bodies need a few hundred bytes).
pub const MIN_BODY_BYTES: usize = 4096;

pub(super) fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}
pub(super) fn default_max_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}
pub(super) fn default_max_connection_rate() -> usize {
    DEFAULT_MAX_CONNECTION_RATE
}
pub(super) fn default_client_request_timeout_ms() -> u64 {
    DEFAULT_CLIENT_REQUEST_TIMEOUT_MS
}
pub(super) fn default_client_disconnect_timeout_ms() -> u64 {
    DEFAULT_CLIENT_DISCONNECT_TIMEOUT_MS
}
pub(super) fn default_client_body_timeout_ms() -> u64 {
    DEFAULT_CLIENT_BODY_TIMEOUT_MS
}
pub(super) fn default_max_inflight_requests() -> usize {
    DEFAULT_MAX_INFLIGHT_REQUESTS
}
pub(super) fn default_max_inflight_per_client() -> usize {
    DEFAULT_MAX_INFLIGHT_PER_CLIENT
}

impl NodeConfig {
    /// The gateway's limits: a body must fit a peer frame (the command it becomes is replicated
    /// in one), connections are bounded, and the per-client in-flight limit is within the
    /// global one (0 turns an in-flight limit off).
    pub(super) fn check_http_limits(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes < MIN_BODY_BYTES {
            return Err(ConfigError::invalid(
                "max_body_bytes",
                self.max_body_bytes,
                format!("must be at least {MIN_BODY_BYTES}"),
            ));
        }
        if self.max_body_bytes.saturating_add(FRAME_ROOM) >= self.max_frame_bytes {
            return Err(ConfigError::invalid(
                "max_body_bytes",
                self.max_body_bytes,
                format!(
                    "must leave {FRAME_ROOM} bytes of room within --max-frame-bytes \
                     (max_frame_bytes) = {}: a request becomes one log entry, replicated in one frame",
                    self.max_frame_bytes
                ),
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::invalid(
                "max_connections",
                0,
                "must be greater than 0",
            ));
        }
        if self.max_connection_rate == 0 {
            return Err(ConfigError::invalid(
                "max_connection_rate",
                0,
                "must be greater than 0",
            ));
        }
        let (global, client) = (self.max_inflight_requests, self.max_inflight_per_client);
        if global != 0 && client > global {
            return Err(ConfigError::invalid(
                "max_inflight_per_client",
                client,
                format!(
                    "must not exceed --max-inflight-requests (max_inflight_requests) = {global}"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::super::PartialConfig;
    use super::*;

    fn valid() -> NodeConfig {
        let cluster: BTreeMap<u64, String> = BTreeMap::from([(1, "127.0.0.1:7001".into())]);
        NodeConfig::with_defaults(1, "/tmp/n1", "127.0.0.1:7001", "127.0.0.1:8001", cluster)
    }

    fn rejected_key(c: &NodeConfig) -> Option<&'static str> {
        c.validate().err().and_then(|e| e.key())
    }

    #[test]
    fn defaults_are_documented_and_valid() {
        let c = valid();
        assert_eq!(c.max_body_bytes, 8 << 20);
        assert_eq!(c.max_connections, 2048);
        assert_eq!(c.max_inflight_requests, 1024);
        assert_eq!(c.max_inflight_per_client, 256);
        assert_eq!(c.client_request_timeout_ms, 5000);
        assert_eq!(c.client_body_timeout_ms, 30_000);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn bodies_must_fit_frames_and_clients_the_node() {
        let mut c = valid();
        c.max_body_bytes = c.max_frame_bytes - FRAME_ROOM;
        assert_eq!(rejected_key(&c), Some("max_body_bytes"));
        let message = c.validate().expect_err("too big").to_string();
        assert!(message.contains("--max-frame-bytes"), "{message}");
        c.max_body_bytes = MIN_BODY_BYTES - 1;
        assert_eq!(rejected_key(&c), Some("max_body_bytes"));
        let mut c = valid();
        c.max_inflight_per_client = c.max_inflight_requests + 1;
        assert_eq!(rejected_key(&c), Some("max_inflight_per_client"));
        c.max_inflight_requests = 0;
        assert!(c.validate().is_ok(), "0 is no global limit");
        let mut c = valid();
        c.max_connections = 0;
        assert_eq!(rejected_key(&c), Some("max_connections"));
    }

    #[test]
    fn toml_keys_are_the_field_names() {
        let text = r#"
            id = 1
            data_dir = "d"
            listen_peer = "127.0.0.1:7001"
            listen_http = "127.0.0.1:8001"
            max_body_bytes = 65536
            max_connections = 100
            max_connection_rate = 10
            client_request_timeout_ms = 1000
            client_disconnect_timeout_ms = 0
            client_body_timeout_ms = 2000
            max_inflight_requests = 50
            max_inflight_per_client = 5
            [cluster]
            1 = "127.0.0.1:7001"
        "#;
        let c = PartialConfig::from_toml_str(text, Path::new("t.toml"))
            .and_then(PartialConfig::build)
            .expect("valid");
        assert_eq!(
            (c.max_body_bytes, c.max_connections, c.max_connection_rate),
            (65536, 100, 10)
        );
        assert_eq!(
            (
                c.client_request_timeout_ms,
                c.client_disconnect_timeout_ms,
                c.client_body_timeout_ms
            ),
            (1000, 0, 2000)
        );
        assert_eq!(
            (c.max_inflight_requests, c.max_inflight_per_client),
            (50, 5)
        );
    }
}
