//! The `raftix` executable: parses the command line, sets up logging and runs the subcommand.
//!
//! Exit status: 0 on success, 2 for usage or configuration errors, 1 for failures at run time.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use raftix::cli::Cli;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // On a usage error clap prints `error: ...` and exits with status 2; `--help` exits with 0.
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    raftix::crash_points::configure_from_env();
    cli.run()
}
