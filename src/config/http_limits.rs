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
