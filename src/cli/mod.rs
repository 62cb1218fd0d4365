//! The `raftix` command line: argument definitions and dispatch of the subcommands.
//!
//! `src/main.rs` parses a [`Cli`], sets up logging and calls [`Cli::run`]. To add a subcommand,
//! add a variant to [`Command`] with its own `Args` struct and a match arm in [`Cli::run`]. The
//! client subcommands (`put`, `get`, ...) live in [`client`] and are merged in as one variant.

#[cfg(feature = "testkit")]
pub mod bench;
pub mod certs;
#[cfg(feature = "testkit")]
pub mod chaos;
pub mod client;
pub mod join;
pub mod promote;
pub mod restore;
pub mod serve;
mod supervise;
pub mod up;
pub mod up_control;
mod up_node;

#[cfg(test)]
mod settings_tests;
#[cfg(test)]
mod tests;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use serve::ServeArgs;
pub use up::{UpArgs, UpError};

/// Exit status for a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;
/// Exit status for a failure at run time.
pub const EXIT_FAILURE: u8 = 1;

/// raftix: a Raft consensus runtime with a key-value store and an HTTP API.
#[derive(Debug, Parser)]
#[command(
    name = "raftix",
    version,
    about,
    propagate_version = true,
    after_help = "Client subcommands (put, get, del, cas, list, status, members, log, \
                  transfer-leader, member, snapshot, backup, token, region, conflicts) exit with 0 \
                  success, 1 cluster \
                  unavailable, 2 usage error, 3 key not found, 4 CAS not swapped, 5 invalid \
                  request; see `raftix put --help`."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one node of a cluster.
    Serve(Box<ServeArgs>),
    /// Run a local cluster of N nodes on 127.0.0.1, one child process each, until Ctrl-C.
    Up(UpArgs),
    /// Load generator: drive a raftix or etcd cluster and report throughput and latency.
    #[cfg(feature = "testkit")]
    Bench(bench::BenchArgs),
    /// Seed a NEW cluster's node from a backup (`raftix backup`): run it once per node with the
    /// same --from and --cluster, then `raftix serve` each node with that --cluster.
    Restore(restore::RestoreArgs),
    /// Make a test CA, node certificates and client certificates for TLS (see docs/security.md).
    Certs(certs::CertsArgs),
    /// Fault injection: real nodes, a seeded nemesis, concurrent clients, then linearizability,
    /// lost-write, convergence and panic checks (see docs/chaos.md).
    #[cfg(feature = "testkit")]
    Chaos(chaos::ChaosArgs),
    /// Serve a lazy filesystem on MOUNTPOINT showing BACKING, losing unsynced writes when
    /// killed: the power-loss disk of `raftix chaos` (see docs/power-loss.md).
    #[cfg(feature = "testkit")]
    #[command(hide = true)]
    Lazyfs(chaos::LazyfsArgs),
    /// The client subcommands: `put`, `get`, `del`, `cas`, `list`, `status`, `members`, `log`,
    /// `transfer-leader`, `member ...`, `snapshot`, `backup`, `token ...`.
    #[command(flatten)]
    Client(client::ClientCommand),
}

impl Cli {
    /// Runs the subcommand, printing any error as `error: ...` on stderr. Returns the process exit
    /// status: 0 on success, [`EXIT_USAGE`] for a configuration error, [`EXIT_FAILURE`] otherwise;
    /// the client subcommands have more (see [`client::error`]).
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Serve(args) if args.print_config => match args.printed_config() {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e, EXIT_USAGE),
            },
            Command::Serve(args) => {
                let (config, promotion) = match join::prepare(&args) {
                    Ok(prepared) => prepared,
                    Err(e) => return fail(&e, e.exit_code()),
                };
                if let Some(promotion) = promotion {
                    if let Err(e) = promotion.spawn() {
                        return fail(&e, EXIT_FAILURE);
                    }
                }
                tracing::info!(id = config.id, cluster = %config.cluster_name, "starting node");
                match crate::server::run(config) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => fail(&*e, EXIT_FAILURE),
                }
            }
            Command::Up(args) => match up::run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e, e.exit_code()),
            },
            #[cfg(feature = "testkit")]
            Command::Bench(args) => bench::run(args),
            Command::Restore(args) => match restore::run(args) {
                Ok(done) => {
                    println!("{}", done.describe());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e, e.exit_code()),
            },
            #[cfg(feature = "testkit")]
            Command::Chaos(args) => chaos::run(args),
            #[cfg(feature = "testkit")]
            Command::Lazyfs(args) => chaos::serve_lazyfs(args),
            Command::Certs(args) => certs::run(args),
            Command::Client(command) => command.run(),
        }
    }
}

/// Prints `error: ...` and returns `code`.
fn fail(e: &dyn std::error::Error, code: u8) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(code)
}
