//! Real `raftix serve` processes: kill -9, restarts, shutdown, bad data dirs, integrity, leases, tokens, TLS, backup and restore, the dashboard in a browser.
//!
//! One test binary per area (see README, "Tests"); the fixtures shared by every area are in
//! `tests/support`.

#[path = "../support/mod.rs"]
mod support;

mod backup_restore;
mod bad_input;
mod cluster;
/// Needs the crash points: `cargo test --workspace --features failpoints` (the README's command).
#[cfg(feature = "failpoints")]
mod crash_points;
mod dashboard_browser;
mod disk_faults;
mod integrity;
mod lease;
mod peer_auth;
mod serve_auth;
mod shutdown;
mod snapshots;
mod tls_gateway;
mod tokens;
