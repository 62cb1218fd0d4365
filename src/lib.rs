//! raftix: a Raft consensus runtime on actix actors, durable in LMDB.
pub mod core;
