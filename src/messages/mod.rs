//! Typed messages between the actors, one file per receiving actor. Commands are imperative
//! (`Persist`, `Apply`, `ArmElection`), reports past tense (`Persisted`, `Applied`,
//! `ElectionTimedOut`). Wire and disk types are re-exported from [`crate::core::types`].

pub mod applier;
pub mod log_store;
pub mod node;
pub mod peer_link;
pub mod replicator;
pub mod snapshot;
pub mod timer;

pub use crate::core::types as wire;
