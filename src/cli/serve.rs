//! The `serve` subcommand's flags and how they combine with the config file into a
//! [`NodeConfig`].

use std::path::PathBuf;

use clap::Args;

use super::client::parse_endpoint;
use crate::config::{ConfigError, NodeConfig, PartialConfig};

/// Flags of `raftix serve`: run one node. Every setting can also come from the environment
/// (`RAFTIX_<KEY>`, see [`PartialConfig`]) or the `--config` file (keys are the flag names with
/// `_` for `-`); flags win over the environment, the environment over the file.
#[derive(Clone, Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML config file with any of the settings below (keys like `listen_peer`).
    #[arg(long, value_name = "FILE", env = "RAFTIX_CONFIG")]
    pub config: Option<PathBuf>,
    /// The settings of the node (each also a config-file key and a RAFTIX_* variable).
    #[command(flatten)]
    pub settings: PartialConfig,
    /// Join a running cluster as a NEW node (empty --data-dir): ask the nodes at these URLs
    /// (`http://HOST:PORT` or `HOST:PORT`, any of them; followers redirect to the leader) to
    /// add this node as a learner at its --advertise-peer address, start with the members they
    /// answer, wait until the log has caught up, then ask to be promoted to voter (unless
    /// --learner). --cluster is not needed. On a data dir that already holds Raft data --join is
    /// ignored and the node starts as it is (with the members recorded by its join).
    #[arg(long, value_name = "URL[,URL..]", value_delimiter = ',', value_parser = parse_endpoint, env = "RAFTIX_JOIN")]
    pub join: Option<Vec<String>>,
    /// With --join: stay a learner (receive the log, never vote); promote it later with
    /// `raftix member promote ID`.
    #[arg(long, requires = "join", env = "RAFTIX_LEARNER")]
    pub learner: bool,
    /// Peer address the other nodes should use to reach this one, announced by --join
    /// [default: --listen-peer].
    #[arg(long, value_name = "HOST:PORT", env = "RAFTIX_ADVERTISE_PEER")]
    pub advertise_peer: Option<String>,
    /// Print the effective configuration (flags over environment over file over defaults) as
    /// TOML, with token secrets redacted, and exit without starting anything.
    #[arg(long)]
    pub print_config: bool,
}

impl ServeArgs {
    /// The `--config` file (if any) overlaid with the flags and the environment, not completed
    /// nor validated yet.
    pub fn partial(&self) -> Result<PartialConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => PartialConfig::load(path)?,
            None => PartialConfig::default(),
        };
        file.overlay(self.settings.clone())
    }

    /// What `--print-config` prints: the effective configuration as TOML. A node that will
    /// `--join` learns its cluster's members when it joins; until then it shows itself alone.
    pub fn printed_config(&self) -> Result<String, ConfigError> {
        let mut partial = self.partial()?;
        if self.join.is_some() && partial.cluster.is_none() {
            if let (Some(id), Some(peer)) = (
                partial.id,
                self.advertise_peer.clone().or(partial.listen_peer.clone()),
            ) {
                partial.cluster = Some(std::collections::BTreeMap::from([(id, peer)]));
            }
        }
        partial.build()?.to_toml()
    }

    /// The validated configuration: the `--config` file (if any) overlaid with the flags and the
    /// environment, defaults for the rest. Touches nothing on disk but reading the files it
    /// names.
    pub fn into_config(self) -> Result<NodeConfig, ConfigError> {
        self.partial()?.build()
    }
}
