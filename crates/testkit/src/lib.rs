//! raftix's test kit: what drives raftix (and etcd, for comparison) from outside, over HTTP and
//! as processes. It does not depend on the `raftix` crate; `raftix` uses it for its `bench` and
//! `chaos` commands, and the tests use it directly.
//!
//! - [`bench`]: the load generator of `raftix bench` and `scripts/bench.sh`.
//! - [`chaos`]: fault injection against real `raftix serve` processes (`raftix chaos`,
//!   `tests/faults/chaos_short.rs`).
//! - [`checker`]: the linearizability checker (Wing–Gong search) the fault suite and the tests
//!   run on recorded histories.
pub mod bench;
pub mod chaos;
pub mod checker;
