//! The pure Raft core: one event, exact actions (rules, membership), and seeded simulations of clusters of cores.
//!
//! One test binary per area (see README, "Tests"); the fixtures shared by every area are in
//! `tests/support`.

#[path = "../support/mod.rs"]
mod support;

mod membership;
mod rules;
mod sim;
