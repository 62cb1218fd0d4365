//! In-process clusters of real actors, LMDB and loopback TCP: elections, partitions, membership, snapshots, health, linearizability, the embedding API.
//!
//! One test binary per area (see README, "Tests"); the fixtures shared by every area are in
//! `tests/support`.

#[path = "../support/mod.rs"]
mod support;

mod actors;
mod example_embedded;
mod health_states;
mod linearizability;
mod manager_regions;
mod membership;
mod snapshots;
