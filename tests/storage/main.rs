//! Durable storage: the LMDB log, the key-value state machine, snapshot files, the data directory and its lock, and the checks at start.
//!
//! One test binary per area (see README, "Tests"); the fixtures shared by every area are in
//! `tests/support`.

#[path = "../support/mod.rs"]
mod support;

mod compaction;
mod data_dir;
mod fixtures;
mod integrity_startup_cost;
mod kv;
mod kv_dedup;
mod kv_regions;
mod kv_snapshot;
mod kv_tokens;
mod kv_txn;
mod launch_checks;
mod log;
mod snapshot;
