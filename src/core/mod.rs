//! The pure Raft core: a deterministic state machine that turns events into actions.
//!
//! Nothing in this module performs I/O, reads a clock, draws random numbers or knows about actors:
//! it imports no actix, heed, tokio or socket type (CI checks this with a grep). The actors in
//! `crate::actors` are its runtime.

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
