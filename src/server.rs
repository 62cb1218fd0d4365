//! TEMPORARY stand-in for the node runtime; the real module replaces this file at merge.

use crate::config::NodeConfig;

/// Runs one node until it is told to stop. Not wired in this branch: always fails.
pub fn run(config: NodeConfig) -> Result<(), Box<dyn std::error::Error>> {
    let _ = config;
    Err("server not wired in this branch".into())
}
