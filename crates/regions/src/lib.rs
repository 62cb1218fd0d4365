//! Multi-region conflict handling: the pure, deterministic layer (issue 8).
//!
//! Every key-value mutation that crosses regions carries a [`Version`]: a hybrid logical clock
//! timestamp ([`Hlc`]), its origin region and a [`VersionVector`] of what it has seen. This module
//! decides, from versions alone, what a region stores when another region's write arrives
//! ([`apply_remote`]), what a local write's version is ([`local_write`]), and how a conflict between
//! concurrent writes is resolved ([`Strategy`], [`ConflictPolicy`], [`Resolvers`]).
//!
//! Like the Raft core (`raftix-core`), nothing here performs I/O, reads a clock, draws random
//! numbers or knows about actors or storage: this crate depends on serde, serde_json and bytes
//! only, so an import of anything else is a compile error. Every region that applies the same
//! versions computes the same result,
//! and every region converges to the same [`Versions`] once it has received every write, whatever
//! the delivery order (see `docs/regions-design.md`, "Conflicts", and `tests/regions/converge.rs`).

mod decimal;
mod hlc;
mod json_set;
mod region;
mod resolve;
#[cfg(test)]
mod resolve_tests;
mod resolvers;
mod stats;
mod strategy;
mod vector;
mod version;
#[cfg(test)]
mod wire;

pub use hlc::Hlc;
pub use region::{check_region_id, RegionId, MAX_REGION_ID_BYTES};
pub use resolve::{apply_remote, local_write, resolve_concurrent, Outcome, ResolveContext};
pub use resolvers::{MergeResolver, Resolvers};
pub use stats::ConflictStats;
pub use strategy::{ConflictPolicy, Strategy};
pub use vector::{Causality, VersionVector};
pub use version::{Version, Versions};
