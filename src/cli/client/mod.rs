//! The client subcommands of `raftix`: `put`, `get`, `del`, `cas`, `list`, `status`, `members`,
//! `log`, `transfer-leader`, `member ...`, `snapshot`, `backup`, `token ...`, `region ...` and `conflicts ...`, talking to a
//! cluster over its REST API.
//!
//! Endpoints come from `--endpoints` (or `RAFTIX_ENDPOINTS`); [`session`] explains failover,
//! leader following and the idempotency key every write carries; [`error`] lists the exit
//! statuses scripts can rely on.

mod admin;
pub mod args;
mod cluster;
mod endpoint;
pub mod error;
mod kv;
mod list;
pub mod member;
mod output;
mod region_args;
mod regions;
pub mod session;
pub mod tls;
mod tokens;
mod txn;

#[cfg(test)]
mod tests;

use std::process::ExitCode;
use std::time::Duration;

pub use args::{
    BackupArgs, CasArgs, ClientCommand, ClientOpts, DelArgs, GetArgs, ListArgs, LogArgs,
    MemberAddArgs, MemberCommand, MemberIdArgs, OptsOnly, PutArgs, TokenCommand, TokenCreateArgs,
    TokenRevokeArgs,
};
pub use endpoint::parse_endpoint;
pub use error::ClientError;
pub use region_args::{ConflictsCommand, RegionCommand};

use session::Session;

impl ClientCommand {
    /// Runs the subcommand; on failure prints `error: ...` on stderr. Returns the exit status
    /// (see [`error::EXIT_CODES_HELP`]).
    pub fn run(self) -> ExitCode {
        let result = match self {
            ClientCommand::Put(args) => kv::put(args),
            ClientCommand::Get(args) => kv::get(args),
            ClientCommand::Del(args) => kv::del(args),
            ClientCommand::Cas(args) => kv::cas(args),
            ClientCommand::Txn(args) => txn::txn(args),
            ClientCommand::List(args) => list::list(args),
            ClientCommand::Status(args) => cluster::status(args),
            ClientCommand::Members(args) => cluster::members(args),
            ClientCommand::Log(args) => cluster::log(args),
            ClientCommand::TransferLeader(args) => cluster::transfer_leader(args),
            ClientCommand::Member(command) => command.run(),
            ClientCommand::Snapshot(args) => admin::snapshot(args),
            ClientCommand::Backup(args) => admin::backup(args),
            ClientCommand::Token(command) => tokens::run(command),
            ClientCommand::Region(command) => regions::region(command),
            ClientCommand::Conflicts(command) => regions::conflicts(command),
        };
        match result {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(e.exit_code())
            }
        }
    }
}

/// A session over the endpoints and timeout of `opts`.
fn session_of(opts: &ClientOpts) -> Result<Session, ClientError> {
    Session::with_tls(
        opts.endpoints.clone(),
        Duration::from_millis(opts.timeout_ms),
        &opts.tls,
    )
    .map(|s| s.with_token(opts.token.clone()))
}

/// A session for reads served at `level`.
fn read_session(opts: &ClientOpts, level: &args::ReadLevel) -> Result<Session, ClientError> {
    session_of(opts).map(|s| s.with_levels(level.consistency.clone(), None))
}

/// A session for writes answered at `level`.
fn write_session(opts: &ClientOpts, level: &args::WriteLevel) -> Result<Session, ClientError> {
    session_of(opts).map(|s| {
        s.with_levels(None, level.ack.clone())
            .with_replication(level.replication.clone())
    })
}
