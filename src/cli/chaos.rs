//! `raftix chaos`: a fault-injection run against real `raftix serve` processes (see
//! [`raftix_testkit::chaos`] and `docs/chaos.md`).
//!
//! Prints the mechanism it uses and the timeline as it goes (stderr), then the report and the
//! verdict (stdout). Exits with 0 when every check passed, 1 when one failed (the report names
//! the seed and the command that replays it), 2 for a usage error or a run that could not be
//! set up.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{EXIT_FAILURE, EXIT_USAGE};
use raftix_testkit::chaos::{ChaosConfig, FaultKind, MechanismChoice};

/// Flags of `raftix chaos`.
#[derive(Clone, Debug, Args)]
pub struct ChaosArgs {
    /// Seed of the fault schedule and of the clients' choices.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// How long faults and workload run, in seconds (setup and checks come on top).
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(5..=86_400))]
    pub time: u64,
    /// Cluster size.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u64).range(3..=5))]
    pub nodes: u64,
    /// How to cut the network: namespaces (root, `ip`, `tc`), per-link TCP proxies, or
    /// namespaces when possible.
    #[arg(long, value_enum, default_value_t = MechanismChoice::Auto)]
    pub mechanism: MechanismChoice,
    /// Fault kinds to use, comma-separated [default: all the mechanism allows].
    #[arg(long, value_enum, value_delimiter = ',', value_name = "KIND,...")]
    pub faults: Vec<FaultKind>,
    /// Concurrent clients.
    #[arg(long, value_name = "N", default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub clients: u64,
    /// Consistency of the clients' reads. `stale` is NOT linearizable: use it to watch the
    /// checker catch stale reads.
    #[arg(long, value_name = "MODE", default_value = "linearizable", value_parser = ["linearizable", "lease", "stale"])]
    pub read_consistency: String,
    /// Where to make the run dir (data dirs and node logs) [default: the temp dir].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Keep the run dir when the run passes (a failed run's is always kept).
    #[arg(long)]
    pub keep_dir: bool,
    /// The executable to run as `raftix serve` [default: this one].
    #[arg(long, value_name = "PATH", hide = true)]
    pub server_bin: Option<PathBuf>,
}

impl ChaosArgs {
    /// The run these flags describe.
    pub fn into_config(self) -> Result<ChaosConfig, String> {
        let bin = match self.server_bin {
            Some(bin) => bin,
            None => std::env::current_exe()
                .map_err(|e| format!("cannot find this executable to run `serve`: {e}"))?,
        };
        let mut config = ChaosConfig::new(
            self.seed,
            self.nodes as usize,
            Duration::from_secs(self.time),
            bin,
        );
        config.mechanism = self.mechanism;
        if !self.faults.is_empty() {
            let mut faults = self.faults;
            faults.sort();
            faults.dedup();
            config.faults = faults;
        }
        config.workload.clients = self.clients as usize;
        config.workload.read_consistency = self.read_consistency;
        config.dir = self.dir;
        config.keep_dir = self.keep_dir;
        // The power fault's disks are served by this same executable's hidden `lazyfs`.
        config.lazyfs = Some(vec![config.bin.clone().into_os_string(), "lazyfs".into()]);
        Ok(config)
    }
}

/// Arguments of the hidden `raftix lazyfs`.
#[derive(Clone, Debug, Args)]
pub struct LazyfsArgs {
    /// The directory holding what is durable.
    #[arg(value_name = "BACKING")]
    pub backing: PathBuf,
    /// Where to mount the lazy view of it.
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: PathBuf,
}

/// Runs `raftix lazyfs` until killed (a power cut) or unmounted.
pub fn serve_lazyfs(args: LazyfsArgs) -> ExitCode {
    match raftix_lazyfs::serve(&args.backing, &args.mountpoint) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "error: the lazy filesystem could not be served on {}: {e}",
                args.mountpoint.display()
            );
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Runs `raftix chaos`; returns the exit status.
pub fn run(args: ChaosArgs) -> ExitCode {
    let config = match args.into_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match raftix_testkit::chaos::run(&config) {
        Ok(report) => {
            println!("{report}");
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILURE)
            }
        }
        Err(e) => {
            eprintln!("error: the chaos run could not be set up: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};
    use raftix_testkit::chaos::{FaultKind, MechanismChoice};

    fn parse(args: &[&str]) -> super::ChaosArgs {
        let cli = Cli::try_parse_from([&["raftix", "chaos"], args].concat()).expect("parses");
        match cli.command {
            Command::Chaos(args) => args,
            other => panic!("not chaos: {other:?}"),
        }
    }

    #[test]
    fn flags_make_the_config() {
        let args = parse(&[
            "--seed",
            "9",
            "--time",
            "600",
            "--nodes",
            "5",
            "--mechanism",
            "proxy",
            "--faults",
            "kill,partition,kill",
            "--keep-dir",
        ]);
        let config = args.into_config().expect("config");
        assert_eq!(config.seed, 9);
        assert_eq!(config.nodes, 5);
        assert_eq!(config.time.as_secs(), 600);
        assert_eq!(config.mechanism, MechanismChoice::Proxy);
        assert_eq!(config.faults, vec![FaultKind::Partition, FaultKind::Kill]);
        assert!(config.keep_dir);
        assert_eq!(
            config.command_line("proxy"),
            "raftix chaos --seed 9 --time 600 --nodes 5 --mechanism proxy --faults partition,kill"
        );
    }

    #[test]
    fn defaults_and_bad_values() {
        let config = parse(&[]).into_config().expect("config");
        assert_eq!(
            (config.seed, config.nodes, config.time.as_secs()),
            (1, 3, 60)
        );
        assert_eq!(config.faults, FaultKind::ALL.to_vec());
        assert_eq!(config.mechanism, MechanismChoice::Auto);
        for bad in [
            &["--nodes", "7"][..],
            &["--mechanism", "carrier-pigeon"],
            &["--faults", "meteor"],
            &["--read-consistency", "eventual"],
            &["--time", "0"],
        ] {
            assert!(
                Cli::try_parse_from([&["raftix", "chaos"], bad].concat()).is_err(),
                "{bad:?} must be refused"
            );
        }
    }
}
