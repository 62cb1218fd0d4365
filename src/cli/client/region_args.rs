//! Flags of `raftix region ...` and `raftix conflicts ...` (multi-region replication).

use clap::{ArgGroup, Args, Subcommand};

use super::args::{ClientOpts, OptsOnly};
use super::endpoint::parse_endpoint;
use super::error::EXIT_CODES_HELP;
use crate::regions::{check_region_id, Strategy};

/// `region list|add|remove|primary|replication|status`: the remote regions this region
/// replicates with. Changes go through the Raft log (followed to the leader like writes); the
/// nodes must run with `raftix serve --region NAME`.
#[derive(Debug, Subcommand)]
pub enum RegionCommand {
    /// Show this region, the primary, the write acknowledgement mode, the conflict policy and
    /// the remote regions.
    #[command(after_help = EXIT_CODES_HELP)]
    List(OptsOnly),
    /// Add a remote region (or replace its endpoints): this region ships its writes there.
    #[command(after_help = EXIT_CODES_HELP)]
    Add(RegionAddArgs),
    /// Stop replicating with a remote region (exit 5 if it is not registered).
    #[command(after_help = EXIT_CODES_HELP)]
    Remove(RegionIdArgs),
    /// Set (or with --clear, unset) the primary region: the one `semi-sync` writes wait for and
    /// that wins `lww-register` ties.
    #[command(after_help = EXIT_CODES_HELP)]
    Primary(RegionPrimaryArgs),
    /// Set when writes answer: async (after the local commit), semi-sync (also acknowledged by
    /// the primary region) or sync (by every region), waiting at most --timeout-ms.
    #[command(after_help = EXIT_CODES_HELP)]
    Replication(RegionReplicationArgs),
    /// Show each link as the leader sees it: connected, lag in entries and seconds, last
    /// acknowledged sequence, last error.
    #[command(after_help = EXIT_CODES_HELP)]
    Status(OptsOnly),
}

/// `conflicts stats|policy`: conflicts between concurrent writes of different regions.
#[derive(Debug, Subcommand)]
pub enum ConflictsCommand {
    /// Show the conflicts resolved in this region by strategy, failed merges and keys holding
    /// unresolved siblings.
    #[command(after_help = EXIT_CODES_HELP)]
    Stats(OptsOnly),
    /// Without flags: show the conflict policy. With --default and/or --prefix: replace the
    /// whole policy (an omitted --default means latest-timestamp). Every region must run with
    /// the same policy.
    #[command(after_help = EXIT_CODES_HELP)]
    Policy(ConflictsPolicyArgs),
}

/// A region name (`--region` of `raftix serve`), checked before anything is sent.
fn parse_region_id(text: &str) -> Result<String, String> {
    check_region_id(text)?;
    Ok(text.to_string())
}

/// A conflict strategy, checked before anything is sent.
pub fn parse_strategy(text: &str) -> Result<String, String> {
    text.parse::<Strategy>().map_err(|e| {
        format!("{e} (strategies: latest-timestamp, lww-register, multi-value, custom:max, custom:min, custom:union)")
    })?;
    Ok(text.to_string())
}

/// `PREFIX=STRATEGY` (the prefix may itself contain `=`: the last one separates).
pub fn parse_prefix_strategy(text: &str) -> Result<(String, String), String> {
    let Some((prefix, strategy)) = text.rsplit_once('=') else {
        return Err(format!("{text:?} is not PREFIX=STRATEGY"));
    };
    if prefix.is_empty() {
        return Err("the prefix is empty: use --default for every key".to_string());
    }
    Ok((prefix.to_string(), parse_strategy(strategy)?))
}

/// `region add ID --endpoints URL[,URL..]`.
#[derive(Clone, Debug, Args)]
pub struct RegionAddArgs {
    /// The remote region's name (as given to its nodes' `--region`).
    #[arg(value_name = "ID", value_parser = parse_region_id)]
    pub id: String,
    /// The remote region's HTTP endpoints (comma-separated `http(s)://HOST:PORT` or
    /// `HOST:PORT`), tried in order to reach its leader.
    #[arg(
        long = "endpoints",
        value_name = "URLS",
        value_delimiter = ',',
        required = true,
        value_parser = parse_endpoint,
    )]
    pub region_endpoints: Vec<String>,
    /// Connection to THIS region (the `region ...` commands take --at instead of --endpoints).
    #[command(flatten)]
    pub conn: RegionConn,
}

/// `region remove ID`.
#[derive(Clone, Debug, Args)]
pub struct RegionIdArgs {
    /// The remote region's name.
    #[arg(value_name = "ID", value_parser = parse_region_id)]
    pub id: String,
    /// Common flags.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// `region primary ID|--clear`.
#[derive(Clone, Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["id", "clear"])))]
pub struct RegionPrimaryArgs {
    /// The primary region (this one or a registered remote one).
    #[arg(value_name = "ID", value_parser = parse_region_id)]
    pub id: Option<String>,
    /// No primary region.
    #[arg(long)]
    pub clear: bool,
    /// Common flags.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// `region replication async|semi-sync|sync [--timeout-ms N]`.
#[derive(Clone, Debug, Args)]
pub struct RegionReplicationArgs {
    /// async, semi-sync or sync.
    #[arg(value_name = "MODE", value_parser = ["async", "semi-sync", "sync"])]
    pub mode: String,
    /// How long a semi-sync or sync write waits for the other regions before answering 202
    /// (committed here, not yet remotely): 1 to 600000 (default: keep the current value; 5000
    /// at first). Clients need a request time limit above it (`--timeout-ms` of `put`).
    #[arg(
        long = "timeout-ms",
        value_name = "MS",
        value_parser = clap::value_parser!(u64).range(1..=600_000),
    )]
    pub ack_timeout_ms: Option<u64>,
    /// Nodes of this region to talk to (same as --at).
    #[arg(
        long,
        value_name = "URLS",
        value_delimiter = ',',
        value_parser = parse_endpoint,
        conflicts_with = "at"
    )]
    pub endpoints: Vec<String>,
    /// Connection flags (no --timeout-ms here: requests get 5000 ms).
    #[command(flatten)]
    pub conn: RegionConn,
}

/// `conflicts policy [--default STRATEGY] [--prefix PREFIX=STRATEGY ...]`.
#[derive(Clone, Debug, Args)]
pub struct ConflictsPolicyArgs {
    /// Strategy of keys no prefix matches: latest-timestamp, lww-register, multi-value or
    /// custom:NAME (built in: custom:max, custom:min, custom:union).
    #[arg(long, value_name = "STRATEGY", value_parser = parse_strategy)]
    pub default: Option<String>,
    /// Strategy of the keys starting with PREFIX (the longest matching prefix wins);
    /// repeatable.
    #[arg(long = "prefix", value_name = "PREFIX=STRATEGY", value_parser = parse_prefix_strategy)]
    pub prefixes: Vec<(String, String)>,
    /// Common flags.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// The connection flags of a `region` subcommand whose own flags clash with the common ones
/// (`--endpoints` of `region add` names the remote region, `--timeout-ms` of `region
/// replication` is the write acknowledgement timeout).
#[derive(Clone, Debug, Args)]
pub struct RegionConn {
    /// Nodes of THIS region to talk to (like --endpoints of the other commands; default:
    /// `RAFTIX_ENDPOINTS`, else the nodes `raftix up` starts).
    #[arg(long, value_name = "URLS", value_delimiter = ',', value_parser = parse_endpoint)]
    pub at: Vec<String>,
    /// Bearer token (`RAFTIX_TOKEN` avoids putting it on the command line).
    #[arg(
        long,
        env = "RAFTIX_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// HTTPS: --cacert, --cert, --key.
    #[command(flatten)]
    pub tls: super::tls::ClientTls,
    /// Print the server's JSON (one line) instead of human output.
    #[arg(long)]
    pub json: bool,
}

impl RegionConn {
    /// The common options these connection flags stand for.
    pub fn into_opts(self) -> Result<ClientOpts, String> {
        let endpoints = if !self.at.is_empty() {
            self.at
        } else if let Ok(env) = std::env::var("RAFTIX_ENDPOINTS") {
            env.split(',')
                .map(parse_endpoint)
                .collect::<Result<Vec<_>, _>>()?
        } else {
            super::args::DEFAULT_ENDPOINTS
                .iter()
                .map(|e| e.to_string())
                .collect()
        };
        Ok(ClientOpts {
            endpoints,
            token: self.token,
            tls: self.tls,
            json: self.json,
            timeout_ms: 5000,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_strategies_split_at_the_last_equals_sign() {
        assert_eq!(
            parse_prefix_strategy("a=b=multi-value"),
            Ok(("a=b".to_string(), "multi-value".to_string()))
        );
        assert_eq!(
            parse_prefix_strategy("hits:=custom:max"),
            Ok(("hits:".to_string(), "custom:max".to_string()))
        );
        assert!(parse_prefix_strategy("no-strategy").is_err());
        assert!(parse_prefix_strategy("=lww-register").is_err());
        assert!(parse_prefix_strategy("p=newest").is_err());
    }

    #[test]
    fn strategies_and_region_names_are_checked() {
        for ok in [
            "latest-timestamp",
            "lww-register",
            "multi-value",
            "custom:union",
        ] {
            assert_eq!(parse_strategy(ok), Ok(ok.to_string()));
        }
        let err = parse_strategy("newest").expect_err("not a strategy");
        assert!(err.contains("latest-timestamp"), "{err}");
        assert_eq!(parse_region_id("eu-west_1"), Ok("eu-west_1".to_string()));
        assert!(parse_region_id("").is_err());
        assert!(parse_region_id("two words").is_err());
        assert!(parse_region_id(&"x".repeat(65)).is_err());
    }

    #[test]
    fn connection_flags_default_like_the_common_ones() {
        let conn = RegionConn {
            at: vec!["http://127.0.0.1:9".to_string()],
            token: Some("t".to_string()),
            tls: Default::default(),
            json: true,
        };
        let opts = conn.into_opts().expect("options");
        assert_eq!(opts.endpoints, ["http://127.0.0.1:9"]);
        assert_eq!(opts.token.as_deref(), Some("t"));
        assert!(opts.json);
        assert_eq!(opts.timeout_ms, 5000);
    }
}
