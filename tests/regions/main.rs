//! Multi-region replication: conflict rules (property tests) and real 3-node regions linked through proxies the tests cut, heal and slow.
//!
//! One test binary per area (see README, "Tests"); the fixtures shared by every area are in
//! `tests/support`.

#[path = "../support/mod.rs"]
mod support;

mod conflicts;
mod converge;
mod leader_change;
mod mesh;
mod partition;
mod registry;
mod snapshots;
mod sync;
