//! `raftix bench`: the load generator (see [`raftix_testkit::bench`]) against a raftix or etcd cluster.
//!
//! Prints the report as text, or as one JSON object with `--json`. Exits with 0 when the run
//! completed (even with failed requests: they are in the report), 2 for a usage error, 1 when
//! the run could not be made (no leader with `--leader-only`, preload failed).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{fail, EXIT_FAILURE, EXIT_USAGE};
use raftix_testkit::bench::{BenchConfig, BenchError, Target, Workload};

/// Largest `--value-bytes` accepted (raftix's default HTTP value limit).
const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// Flags of `raftix bench`.
#[derive(Clone, Debug, Args)]
pub struct BenchArgs {
    /// The system under test.
    #[arg(long, value_enum, default_value_t = Target::Raftix)]
    pub target: Target,
    /// Base URLs of the nodes, comma-separated (`http://` is added when missing).
    #[arg(
        long,
        value_name = "URL,...",
        value_delimiter = ',',
        required = true,
        value_parser = parse_endpoint
    )]
    pub endpoints: Vec<String>,
    /// What the clients do (read-lease is raftix only).
    #[arg(long, value_enum, default_value_t = Workload::Write)]
    pub workload: Workload,
    /// Concurrent clients, each with one keep-alive connection.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub clients: u32,
    /// OS threads running the clients (each a single-threaded actix system).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: u32,
    /// How long to measure, in seconds (after the warmup); the run stops by itself.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub duration_secs: u64,
    /// How long to run the workload before measuring, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub warmup_secs: u64,
    /// Size of each written value.
    #[arg(long, value_name = "BYTES", default_value_t = 100, value_parser = parse_value_bytes)]
    pub value_bytes: usize,
    /// Number of distinct keys (preloaded before a read workload).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub keys: u64,
    /// Do not write the keys before a read workload (they must exist already).
    #[arg(long)]
    pub no_preload: bool,
    /// Send every request to the leader instead of spreading the clients over the endpoints.
    #[arg(long)]
    pub leader_only: bool,
    /// How long one request may take before it counts as a timeout.
    #[arg(long, value_name = "MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub timeout_ms: u64,
    /// After a failed request, move the client on to the next endpoint (with a new connection),
    /// as a client library fails over; without it a client stays on its endpoint.
    #[arg(long)]
    pub rotate_on_error: bool,
    /// End the run once N requests have succeeded in total (warmup included), or at the end of
    /// --duration-secs if that comes first. For writes: N entries appended to the log.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub total_ops: Option<u64>,
    /// Record every request (warmup included) to FILE as CSV, sorted by completion:
    /// `start_unix_us,end_unix_us,client,endpoint,outcome` (wall-clock microseconds; outcome `ok`
    /// or the failure kind). To time a failover: the first `ok` after a kill.
    #[arg(long, value_name = "FILE")]
    pub timeline: Option<std::path::PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Parses one endpoint: `host:port` or `http://host:port`, without a trailing slash.
fn parse_endpoint(text: &str) -> Result<String, String> {
    let text = text.trim();
    let host = match text.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            return Err(format!("{text}: {scheme}:// is not supported, use http://"))
        }
        None => text,
    };
    let host = host.trim_end_matches('/');
    if host.is_empty() {
        return Err(format!("`{text}`: no host"));
    }
    Ok(format!("http://{host}"))
}

/// Parses `--value-bytes`: 0 to [`MAX_VALUE_BYTES`].
fn parse_value_bytes(text: &str) -> Result<usize, String> {
    let n: usize = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if n > MAX_VALUE_BYTES {
        return Err(format!("{n} bytes: at most {MAX_VALUE_BYTES}"));
    }
    Ok(n)
}

impl BenchArgs {
    /// The run these flags describe, or why it cannot work.
    pub fn into_config(self) -> Result<BenchConfig, BenchError> {
        if self.target == Target::Etcd && self.workload == Workload::ReadLease {
            return Err(BenchError::Usage(
                "--workload read-lease is raftix only: etcd's gateway has no lease reads".into(),
            ));
        }
        if self.endpoints.is_empty() {
            return Err(BenchError::Usage("--endpoints is empty".into()));
        }
        Ok(BenchConfig {
            target: self.target,
            endpoints: self.endpoints,
            workload: self.workload,
            clients: self.clients as usize,
            threads: self.threads.min(self.clients) as usize,
            duration: Duration::from_secs(self.duration_secs),
            warmup: Duration::from_secs(self.warmup_secs),
            value_bytes: self.value_bytes,
            keys: self.keys,
            preload: !self.no_preload,
            leader_only: self.leader_only,
            timeout: Duration::from_millis(self.timeout_ms),
            rotate_on_error: self.rotate_on_error,
            total_ops: self.total_ops,
            timeline: self.timeline,
        })
    }
}

/// Runs `raftix bench`; returns the exit status.
pub fn run(args: BenchArgs) -> ExitCode {
    let json = args.json;
    let config = match args.into_config() {
        Ok(config) => config,
        Err(e) => return fail(&e, EXIT_USAGE),
    };
    match raftix_testkit::bench::run(&config) {
        Ok(report) => {
            if json {
                match serde_json::to_string(&report) {
                    Ok(text) => println!("{text}"),
                    Err(e) => return fail(&e, EXIT_FAILURE),
                }
            } else {
                print!("{report}");
            }
            ExitCode::SUCCESS
        }
        Err(e @ BenchError::Usage(_)) => fail(&e, EXIT_USAGE),
        Err(e) => fail(&e, EXIT_FAILURE),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn bench_args(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        let argv = ["raftix", "bench"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Bench(b) => Ok(b),
            other => panic!("not a bench command: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let args = bench_args(&["--endpoints", "127.0.0.1:8001"]).expect("parses");
        let config = args.into_config().expect("valid");
        assert_eq!(config.target, Target::Raftix);
        assert_eq!(config.workload, Workload::Write);
        assert_eq!(config.endpoints, vec!["http://127.0.0.1:8001"]);
        assert_eq!(config.clients, 16);
        assert_eq!(config.threads, 1);
        assert_eq!(config.duration, Duration::from_secs(10));
        assert_eq!(config.warmup, Duration::from_secs(2));
        assert_eq!(config.value_bytes, 100);
        assert_eq!(config.keys, 1000);
        assert!(config.preload);
        assert!(!config.leader_only);
        assert_eq!(config.timeout, Duration::from_millis(5000));
        assert!(!config.rotate_on_error);
        assert_eq!(config.total_ops, None);
        assert_eq!(config.timeline, None);
    }

    #[test]
    fn every_flag() {
        let args = bench_args(&[
            "--target",
            "etcd",
            "--endpoints",
            "http://127.0.0.1:2379/,127.0.0.1:2380",
            "--workload",
            "read-stale",
            "--clients",
            "64",
            "--threads",
            "2",
            "--duration-secs",
            "3",
            "--warmup-secs",
            "0",
            "--value-bytes",
            "10",
            "--keys",
            "5",
            "--no-preload",
            "--leader-only",
            "--timeout-ms",
            "100",
            "--rotate-on-error",
            "--total-ops",
            "1000",
            "--timeline",
            "/tmp/t.csv",
            "--json",
        ])
        .expect("parses");
        assert!(args.json);
        let config = args.into_config().expect("valid");
        assert_eq!(config.target, Target::Etcd);
        assert_eq!(config.workload, Workload::ReadStale);
        assert_eq!(
            config.endpoints,
            vec!["http://127.0.0.1:2379", "http://127.0.0.1:2380"]
        );
        assert_eq!((config.clients, config.threads), (64, 2));
        assert_eq!(config.duration, Duration::from_secs(3));
        assert_eq!(config.warmup, Duration::ZERO);
        assert_eq!((config.value_bytes, config.keys), (10, 5));
        assert!(!config.preload);
        assert!(config.leader_only);
        assert_eq!(config.timeout, Duration::from_millis(100));
        assert!(config.rotate_on_error);
        assert_eq!(config.total_ops, Some(1000));
        assert_eq!(
            config.timeline,
            Some(std::path::PathBuf::from("/tmp/t.csv"))
        );
    }

    #[test]
    fn workload_names() {
        for (name, workload) in [
            ("write", Workload::Write),
            ("read-linearizable", Workload::ReadLinearizable),
            ("read-lease", Workload::ReadLease),
            ("read-stale", Workload::ReadStale),
        ] {
            let args = bench_args(&["--endpoints", "h:1", "--workload", name]).expect("parses");
            assert_eq!(args.workload, workload);
            assert_eq!(workload.name(), name);
        }
    }

    #[test]
    fn threads_never_exceed_clients() {
        let args = bench_args(&["--endpoints", "h:1", "--clients", "2", "--threads", "8"])
            .expect("parses");
        assert_eq!(args.into_config().expect("valid").threads, 2);
    }

    #[test]
    fn rejected_flags() {
        for bad in [
            vec![],
            vec!["--endpoints", ""],
            vec!["--endpoints", "https://h:1"],
            vec!["--endpoints", "ftp://h:1"],
            vec!["--endpoints", "http://"],
            vec!["--endpoints", "h:1", "--clients", "0"],
            vec!["--endpoints", "h:1", "--threads", "0"],
            vec!["--endpoints", "h:1", "--duration-secs", "0"],
            vec!["--endpoints", "h:1", "--keys", "0"],
            vec!["--endpoints", "h:1", "--value-bytes", "2000000"],
            vec!["--endpoints", "h:1", "--value-bytes", "ten"],
            vec!["--endpoints", "h:1", "--workload", "scan"],
            vec!["--endpoints", "h:1", "--target", "consul"],
            vec!["--endpoints", "h:1", "--total-ops", "0"],
            vec!["--endpoints", "h:1", "--timeline"],
        ] {
            assert!(bench_args(&bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn lease_reads_are_raftix_only() {
        let args = bench_args(&[
            "--endpoints",
            "h:1",
            "--target",
            "etcd",
            "--workload",
            "read-lease",
        ])
        .expect("parses");
        assert!(matches!(args.into_config(), Err(BenchError::Usage(_))));
    }
}
