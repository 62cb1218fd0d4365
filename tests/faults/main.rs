//! The fault-injection suite (`raftix chaos`) on short seeded schedules: its own binary, so that its runs never share the machine with other process tests.
//!
//! One test binary per area (see README, "Tests"); the fixtures shared by every area are in
//! `tests/support`.

#[path = "../support/mod.rs"]
mod support;

mod chaos_short;
mod clock;
mod power;
