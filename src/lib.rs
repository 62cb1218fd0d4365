//! raftix: a Raft consensus runtime on actix actors, durable in LMDB.
//!
//! - [`core`]: the pure, deterministic Raft protocol (no I/O): the `raftix-core` crate.
//! - [`storage`]: the LMDB log store and the built-in key-value state machine.
//! - [`transport`]: TCP framing between peers.
//! - [`tls`]: mutual TLS between peers, HTTPS on the gateway, test certificates.
//! - [`actors`]: the actix runtime around the core.
//! - [`http`]: the REST gateway.
//! - [`views`]: what a node reports about itself and its cluster (status, members, health).
//! - [`region_shipping`]: ships this region's writes to other regions (multi-region replication).
//! - [`regions`]: the pure, deterministic conflict handling of multi-region replication: the
//!   `raftix-regions` crate.
//!
//! The load generator, the fault-injection suite and the linearizability checker are the
//! `raftix-testkit` crate, used by the `raftix bench` and `raftix chaos` commands (feature
//! `testkit`, on by default) and by the tests; the library itself does not ship them.
pub mod actors;
pub mod cli;
pub mod config;
pub mod crash_points;
pub use raftix_core as core;
pub mod http;
pub mod manager;
pub mod messages;
pub mod metrics;
pub use raftix_regions as regions;
pub mod region_shipping;
/// The former name of [`region_shipping`] (it is not `core`'s log replication).
#[doc(hidden)]
pub use region_shipping as replication;
pub mod server;
pub mod state_machine;
pub mod storage;
pub mod tls;
pub mod transport;
pub mod views;
