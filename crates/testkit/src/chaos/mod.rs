//! Fault injection against real `raftix serve` processes: the library behind `raftix chaos`
//! and `tests/faults/chaos_short.rs`. See `docs/chaos.md`.
//!
//! A run ([`run()`]) starts 3 or 5 nodes, each in its own network namespace ([`netns`]) or,
//! where namespaces are unavailable, behind per-link TCP proxies ([`proxy`]); drives
//! concurrent clients against them ([`workload`]) while a seeded nemesis ([`nemesis`]) cuts
//! the network, kills, pauses and restarts nodes, fills or freezes a disk ([`cluster`]), skews a
//! clock ([`clock`]), cuts the power of nodes whose data dirs are lazy filesystems ([`power`]);
//! heals;
//! and then checks ([`checks`]) that every key's history is linearizable, that no acknowledged
//! write was lost, that the replicas converged to identical contents, and that no node
//! panicked. [`report`] turns the outcome into the verdict, with the seed, the faulty history
//! window and the fault timeline when something failed.
//!
//! Modules, one job each: [`net`] (the mechanism facade), [`netns`], [`proxy`], [`cluster`],
//! [`power`],
//! [`api`] (the REST calls), [`nemesis`], [`workload`], [`checks`], [`report`],
//! [`timeline`] (clock and event log), [`rng`] (seeded generator), and `run` (the orchestration).

pub mod api;
mod bridge_firewall;
pub mod checks;
pub mod clock;
pub mod cluster;
pub mod nemesis;
pub mod net;
pub mod netns;
pub mod power;
pub mod proxy;
pub mod report;
pub mod rng;
mod run;
pub mod timeline;
pub mod workload;

pub use nemesis::FaultKind;
pub use net::{Mechanism, MechanismChoice};
pub use report::RunReport;
pub use run::{run, ChaosConfig};
