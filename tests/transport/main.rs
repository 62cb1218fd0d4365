//! The peer transport: frames, links, the cluster-secret handshake, mutual TLS, fuzzed frames.
//!
//! One test binary per area (see README, "Tests"); the fixtures shared by every area are in
//! `tests/support`.

#[path = "../support/mod.rs"]
mod support;

mod auth;
mod fuzz_frames;
mod harness;
mod links;
mod tls;
