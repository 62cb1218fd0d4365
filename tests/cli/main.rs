//! The `raftix` command line against real processes: flags and config errors, `up`, every client command, certificates, tokens, membership, regions.
//!
//! One test binary per area (see README, "Tests"); the fixtures shared by every area are in
//! `tests/support`.

#[path = "../support/mod.rs"]
mod support;

mod args;
mod auth;
mod certs;
mod client;
mod membership;
mod regions;
mod tokens;
