//! raftix: a Raft consensus runtime on actix actors, durable in LMDB.
//!
//! - [`core`]: the pure, deterministic Raft protocol (no I/O).
//! - [`storage`]: the LMDB log store and the built-in key-value state machine.
//! - [`transport`]: TCP framing between peers.
//! - [`tls`]: mutual TLS between peers, HTTPS on the gateway, test certificates.
//! - [`actors`]: the actix runtime around the core.
//! - [`http`]: the REST gateway.
//! - [`bench`]: the load generator of `raftix bench`.
//! - [`chaos`]: fault injection against real processes (`raftix chaos`, `tests/chaos_short.rs`).
//! - [`regions`]: the pure, deterministic conflict handling of multi-region replication.
pub mod actors;
pub mod bench;
pub mod chaos;
pub mod checker;
pub mod cli;
pub mod config;
pub mod core;
pub mod http;
pub mod manager;
pub mod messages;
pub mod metrics;
pub mod regions;
pub mod replication;
pub mod server;
pub mod state_machine;
pub mod storage;
pub mod tls;
pub mod transport;
