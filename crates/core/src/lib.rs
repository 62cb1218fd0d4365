//! The pure Raft core: a deterministic state machine that turns events into actions.
//!
//! Nothing in this crate performs I/O, reads a clock, draws random numbers or knows about actors:
//! it depends on serde and bytes only, so an import of actix, heed, tokio or a socket type is a
//! compile error. The actors of the `raftix` crate (`raftix::actors`) are its runtime; `raftix`
//! re-exports this crate as `raftix::core`.

pub mod config;
mod election;
pub mod event;
mod follower;
pub mod log;
pub mod membership;
pub mod progress;
pub mod raft;
mod read_index;
mod receive;
mod replication;
mod snapshot;
pub mod transfer;
pub mod types;

pub use config::CoreConfig;
pub use event::{Action, Event};
pub use log::RaftLog;
pub use membership::{ChangeError, ConfigChange, ConfigHistory};
pub use raft::{NotLeader, RaftCore, Recovered};
pub use transfer::TransferError;
pub use types::*;
