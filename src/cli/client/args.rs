//! Flags of the client subcommands (`put`, `get`, `del`, `cas`, `list`, `status`, `members`,
//! `log`, `transfer-leader`, `member ...`, `snapshot`, `backup`, `token ...`).

use std::path::PathBuf;

use clap::{ArgGroup, Args, Subcommand};

use super::endpoint::parse_endpoint;
use super::error::EXIT_CODES_HELP;

/// The endpoints `raftix up` serves by default, one per node.
pub(super) const DEFAULT_ENDPOINTS: [&str; 3] = [
    "http://127.0.0.1:8001",
    "http://127.0.0.1:8002",
    "http://127.0.0.1:8003",
];

/// Flags every client subcommand takes.
#[derive(Clone, Debug, Args)]
pub struct ClientOpts {
    /// Nodes to talk to, tried in order: comma-separated `http://HOST:PORT`, `https://HOST:PORT`
    /// or `HOST:PORT` (plain HTTP).
    #[arg(
        long,
        env = "RAFTIX_ENDPOINTS",
        value_name = "URLS",
        value_delimiter = ',',
        default_values = DEFAULT_ENDPOINTS,
        value_parser = parse_endpoint,
    )]
    pub endpoints: Vec<String>,
    /// Bearer token sent with every request, for clusters with access control (`RAFTIX_TOKEN`
    /// avoids putting it on the command line).
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
    /// Time limit of each request to the cluster, retries and failover included.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 5000,
        value_parser = clap::value_parser!(u64).range(1..),
    )]
    pub timeout_ms: u64,
}

/// `--consistency`: how a read (`get`, `list`) is served. Only reads offer it.
#[derive(Clone, Debug, Default, Args)]
pub struct ReadLevel {
    /// Read consistency: linearizable (default), lease, stale or all.
    #[arg(long, value_name = "LEVEL", value_parser = ["linearizable", "quorum", "lease", "stale", "one", "all"])]
    pub consistency: Option<String>,
}

/// `--ack` and `--replication`: when a write (`put`, `del`, `cas`, `txn`) is answered. Only
/// writes offer them.
#[derive(Clone, Debug, Default, Args)]
pub struct WriteLevel {
    /// When the write is answered: quorum (default), all (applied on every voter) or leader
    /// (durable on the leader only; `put` and `del` only).
    #[arg(long, value_name = "LEVEL", value_parser = ["quorum", "all", "leader"])]
    pub ack: Option<String>,
    /// Multi-region: what the write waits for besides the local commit: async, semi-sync (the
    /// primary region) or sync (every region); default: the region's setting (`raftix region
    /// replication`). A wait that times out prints a warning (committed here, not yet
    /// remotely) and exits 0; --timeout-ms must exceed the region's wait timeout.
    #[arg(long, value_name = "MODE", value_parser = ["async", "semi-sync", "sync"])]
    pub replication: Option<String>,
}

/// The client subcommands (merged into `raftix`'s own subcommands).
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Set KEY to VALUE (`-` reads the value from stdin); prints `OK index=N term=T`.
    #[command(after_help = EXIT_CODES_HELP)]
    Put(PutArgs),
    /// Print the value of KEY, bytes as stored (a newline is added only on a terminal).
    #[command(after_help = EXIT_CODES_HELP)]
    Get(GetArgs),
    /// Delete KEY; prints whether it existed (an absent key is not an error).
    #[command(after_help = EXIT_CODES_HELP)]
    Del(DelArgs),
    /// Compare-and-swap: change KEY only if it currently holds the expected value.
    #[command(after_help = EXIT_CODES_HELP)]
    Cas(CasArgs),
    /// Transaction: puts and deletes applied together, only if every guard holds (one log
    /// entry: all or nothing).
    #[command(after_help = EXIT_CODES_HELP)]
    Txn(super::txn::TxnArgs),
    /// List keys in order, with their values.
    #[command(after_help = EXIT_CODES_HELP)]
    List(ListArgs),
    /// Show the status of the first node that answers.
    #[command(after_help = EXIT_CODES_HELP)]
    Status(OptsOnly),
    /// Show the cluster members (as the leader sees them, when it can be reached).
    #[command(after_help = EXIT_CODES_HELP)]
    Members(OptsOnly),
    /// Show entries of the replicated log, one line each.
    #[command(after_help = EXIT_CODES_HELP)]
    Log(LogArgs),
    /// Hand leadership to a node (or the most up-to-date voter); prints the new leader.
    #[command(name = "transfer-leader", after_help = EXIT_CODES_HELP)]
    TransferLeader(TransferArgs),
    /// Change the membership one server at a time: add a learner, promote, demote, remove, list.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Take a snapshot on the first endpoint now (compacting its log) and print it.
    #[command(after_help = EXIT_CODES_HELP)]
    Snapshot(OptsOnly),
    /// Download a fresh snapshot of the first endpoint into FILE (written atomically, then
    /// verified); restore it into a new cluster with `raftix restore`.
    #[command(after_help = EXIT_CODES_HELP)]
    Backup(BackupArgs),
    /// Manage replicated API tokens (admin): create (prints the secret once), list, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Multi-region replication: list, add, remove, primary, replication, status.
    #[command(subcommand)]
    Region(super::region_args::RegionCommand),
    /// Conflicts between regions: stats, policy.
    #[command(subcommand)]
    Conflicts(super::region_args::ConflictsCommand),
}

/// `token create|list|revoke`: replicated bearer tokens, stored by the cluster (only the
/// SHA-256 of each secret). Needs an admin token (`--token`/`RAFTIX_TOKEN`), except to create
/// the first one while access control is off: that one must be an admin token, and creating it
/// turns access control on.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints its secret (once: only its hash is stored) on stdout.
    #[command(after_help = EXIT_CODES_HELP)]
    Create(TokenCreateArgs),
    /// List the tokens (never their secrets): name, role, prefix, source, expiry.
    #[command(after_help = EXIT_CODES_HELP)]
    List(OptsOnly),
    /// Revoke a replicated token: it is refused as soon as each node applied the revocation.
    #[command(after_help = EXIT_CODES_HELP)]
    Revoke(TokenRevokeArgs),
}

/// `token create --name N --role R [--prefix P] [--expires-in D]`.
#[derive(Clone, Debug, Args)]
pub struct TokenCreateArgs {
    /// A unique name, shown in logs and listings instead of the secret.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// What it may do: read, write or admin.
    #[arg(long, value_name = "ROLE", value_parser = ["read", "write", "admin"])]
    pub role: String,
    /// Only keys starting with this (read and write tokens).
    #[arg(long, value_name = "P")]
    pub prefix: Option<String>,
    /// Lifetime: seconds, or a number with s, m, h or d (`90s`, `15m`, `1h`, `30d`); default:
    /// no expiry.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_secs)]
    pub expires_in: Option<u64>,
    /// Common flags.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// `token revoke NAME`.
#[derive(Clone, Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Common flags.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// Seconds of a duration written `N`, `Ns`, `Nm`, `Nh` or `Nd` (N > 0).
pub fn parse_duration_secs(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d (e.g. 1h)")),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 15m, 1h or 30d"))?;
    if n == 0 {
        return Err("the duration must be positive".to_string());
    }
    n.checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// `member add|promote|demote|remove|list`: each change is made by the leader (followed from
/// any endpoint), one server at a time; a change refused because another one is in progress is
/// retried for up to 10 s.
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Add a node as a learner: it receives the log but does not vote until promoted. Start the
    /// node itself with `raftix serve --join` (or with `--learners`).
    #[command(after_help = EXIT_CODES_HELP)]
    Add(MemberAddArgs),
    /// Make a learner a voter (it must have caught up with the leader's log).
    #[command(after_help = EXIT_CODES_HELP)]
    Promote(MemberIdArgs),
    /// Make a voter a learner.
    #[command(after_help = EXIT_CODES_HELP)]
    Demote(MemberIdArgs),
    /// Remove a voter or learner from the cluster (not an error if it is not a member).
    #[command(after_help = EXIT_CODES_HELP)]
    Remove(MemberIdArgs),
    /// Show the members (same as `raftix members`).
    #[command(after_help = EXIT_CODES_HELP)]
    List(OptsOnly),
}

/// `member add --id ID --peer-addr HOST:PORT`.
#[derive(Clone, Debug, Args)]
pub struct MemberAddArgs {
    /// The new node's id.
    #[arg(long, value_name = "ID", value_parser = clap::value_parser!(u64).range(1..))]
    pub id: u64,
    /// The new node's peer (Raft) address.
    #[arg(long, value_name = "HOST:PORT")]
    pub peer_addr: String,
    /// Common flags.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// `member promote|demote|remove ID`.
#[derive(Clone, Debug, Args)]
pub struct MemberIdArgs {
    /// The node.
    #[arg(value_name = "ID", value_parser = clap::value_parser!(u64).range(1..))]
    pub id: u64,
    /// Common flags.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// `backup --out FILE`.
#[derive(Clone, Debug, Args)]
pub struct BackupArgs {
    /// Where to write the backup (replaced atomically if it exists).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Common flags (`--timeout-ms` bounds taking the snapshot and each read of the download,
    /// not the whole download).
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// `transfer-leader [--to ID]`.
#[derive(Clone, Debug, Args)]
pub struct TransferArgs {
    /// The node to hand leadership to (default: the most up-to-date voter).
    #[arg(long, value_name = "ID")]
    pub to: Option<u64>,
    /// Common flags.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// Flags of a subcommand that takes only the common ones.
#[derive(Clone, Debug, Args)]
pub struct OptsOnly {
    /// Common flags.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// `put KEY VALUE`.
#[derive(Clone, Debug, Args)]
pub struct PutArgs {
    /// The key (any UTF-8 text, 1 to 511 bytes).
    pub key: String,
    /// The value; `-` reads it (as bytes) from stdin.
    pub value: String,
    /// When it is answered.
    #[command(flatten)]
    pub level: WriteLevel,
    /// Common flags.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// `get KEY`.
#[derive(Clone, Debug, Args)]
pub struct GetArgs {
    /// The key.
    pub key: String,
    /// How the read is served.
    #[command(flatten)]
    pub level: ReadLevel,
    /// Common flags.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// `del KEY`.
#[derive(Clone, Debug, Args)]
pub struct DelArgs {
    /// The key.
    pub key: String,
    /// When it is answered.
    #[command(flatten)]
    pub level: WriteLevel,
    /// Common flags.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// `cas KEY (--expected V | --expect-absent) (--value V | --delete)`.
#[derive(Clone, Debug, Args)]
#[command(group(ArgGroup::new("expectation").required(true).args(["expected", "expect_absent"])))]
#[command(group(ArgGroup::new("outcome").required(true).args(["value", "delete"])))]
pub struct CasArgs {
    /// The key.
    pub key: String,
    /// Swap only if the key currently holds this value.
    #[arg(long, value_name = "V")]
    pub expected: Option<String>,
    /// Swap only if the key is currently absent.
    #[arg(long)]
    pub expect_absent: bool,
    /// The new value.
    #[arg(long, value_name = "V")]
    pub value: Option<String>,
    /// Delete the key instead of setting a new value.
    #[arg(long)]
    pub delete: bool,
    /// When it is answered.
    #[command(flatten)]
    pub level: WriteLevel,
    /// Common flags.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// `list [--prefix P] [--limit N] [--after K] [--all]`.
#[derive(Clone, Debug, Args)]
pub struct ListArgs {
    /// Only keys starting with this.
    #[arg(long, value_name = "P")]
    pub prefix: Option<String>,
    /// Keys per page (1 to 1000; the server's default is 100).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Start after this key (the `next` of a previous page).
    #[arg(long, value_name = "K")]
    pub after: Option<String>,
    /// Follow `next` until the last page and print every key.
    #[arg(long)]
    pub all: bool,
    /// How the read is served.
    #[command(flatten)]
    pub level: ReadLevel,
    /// Common flags.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// `log [--from I] [--limit N]`.
#[derive(Clone, Debug, Args)]
pub struct LogArgs {
    /// First index (default: the last LIMIT entries).
    #[arg(long, value_name = "I")]
    pub from: Option<u64>,
    /// Most entries (1 to 1000; the server's default is 100).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Common flags.
    #[command(flatten)]
    pub opts: ClientOpts,
}
